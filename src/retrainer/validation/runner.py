"""Run a suite on a batch with Great Expectations and turn the result into plain reasons."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.schema import BatchSchema
from retrainer.validation.structure import check_structure
from retrainer.validation.suites import SuiteError, load_suite


@dataclass
class ValidationOutcome:
    valid: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def summary(self, batch: str) -> str:
        head = f"batch {batch}: {'accepted' if self.valid else 'REJECTED'}"
        lines = [head] + [f"  critical: {f}" for f in self.failures] + [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def quiet_context(project_root_dir: Path | None = None) -> Any:
    """A GE data context (file-backed when given a folder, else ephemeral), without GE's chatter."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GE sets this module's logger to INFO itself and announces its temporary Data Docs folder
    # on every new context; quiet it before the context exists.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context: Any
    if project_root_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=project_root_dir)
    # GE's tqdm "Calculating Metrics" bars would interleave with the pipeline's own timeline.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@functools.cache
def _batch_definition() -> Any:
    """One ephemeral GE context per process; created on first use, never at import."""
    context = quiet_context()
    asset = context.data_sources.add_pandas("retrainer").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole batch")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _describe(kind: str, kwargs: dict[str, Any], result: dict[str, Any]) -> str:
    column = kwargs.get("column")
    target = f"{kind}({column})" if column else kind
    if "observed_value" in result and result["observed_value"] is not None:
        observed = result["observed_value"]
        observed = _number(observed)
        bounds = ""
        if "min_value" in kwargs or "max_value" in kwargs:
            bounds = f" not in [{_number(kwargs.get('min_value'))}, {_number(kwargs.get('max_value'))}]"
        return f"{target}: observed {observed}{bounds}"
    if result.get("unexpected_percent") is not None:
        examples = result.get("partial_unexpected_list") or []
        example = f" (e.g. {examples[0]!r})" if examples else ""
        mostly = kwargs.get("mostly")
        allowed = f", allowed {100 * (1 - mostly):.1f}%" if mostly is not None else ""
        return f"{target}: {result['unexpected_percent']:.1f}% unexpected{allowed}{example}"
    return f"{target}: failed"


def validate_batch(frame: pd.DataFrame, schema: BatchSchema, suite_path: Path) -> ValidationOutcome:
    """Structural checks, then the suite as it is on disk now (edits apply from the next call)."""
    structure = check_structure(frame, schema)
    if structure.failures:
        return ValidationOutcome(valid=False, failures=structure.failures, warnings=structure.notices,
                                 result={"structural_failures": structure.failures, "notices": structure.notices})
    suite_json = load_suite(suite_path)
    import great_expectations as gx

    batch_definition = _batch_definition()
    try:
        suite = gx.ExpectationSuite(**suite_json)
    except Exception as exc:
        raise SuiteError(f"{suite_path}: invalid expectation suite ({str(exc).splitlines()[0]})") from None
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format="SUMMARY")
    failures: list[str] = []
    warnings: list[str] = list(structure.notices)
    # A column the suite lets be absent (its expect_column_to_exist is not critical, e.g. labels
    # that arrive later) is judged by that expectation alone: checks on its values apply only
    # when it is present.
    optional_absent = {
        e.get("kwargs", {}).get("column") for e in suite_json["expectations"]
        if e.get("type") == "expect_column_to_exist" and e.get("severity", "critical") != "critical"
        and e.get("kwargs", {}).get("column") not in frame.columns
    }
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        if config.type != "expect_column_to_exist" and config.kwargs.get("column") in optional_absent:
            continue
        severity = str(getattr(config.severity, "value", config.severity)).lower()
        reason = _describe(config.type, dict(config.kwargs), dict(item.result or {}))
        if item.exception_info and item.exception_info.get("raised_exception"):
            message = str(item.exception_info.get("exception_message", "")).splitlines()[0:1]
            reason = f"{config.type}({config.kwargs.get('column')}): could not be evaluated ({''.join(message)})"
        (failures if severity == "critical" else warnings).append(reason)
    document = result.to_json_dict()
    document["notices"] = structure.notices
    return ValidationOutcome(valid=not failures, failures=failures, warnings=warnings, result=document)
