"""Run a suite on a batch with Great Expectations and turn the result into plain reasons."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import ValidationSettings
from retrainer.core.records import ValidationSummary
from retrainer.core.schema import BatchSchema, validation_view
from retrainer.validation.structure import StructureReport, check_structure
from retrainer.validation.suites import SuiteError, load_suite


@dataclass
class ValidationOutcome:
    """A batch's validation: valid or not, critical failures and warnings as one-line reasons, GE's result,
    the rows failing row-wise critical expectations, and those row-level quarantine split off."""

    valid: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    # Index labels of rows failing row-wise critical expectations (COMPLETE results only).
    failing_rows: set[Any] = field(default_factory=set)
    # Rows split off by row-level quarantine; the batch that goes on holds the rest.
    rejected_rows: pd.DataFrame | None = None

    @classmethod
    def structurally_broken(cls, structure: StructureReport) -> ValidationOutcome:
        """Rejected before any expectation ran: the suite cannot judge a batch of the wrong shape."""
        return cls(valid=False, failures=structure.failures, warnings=structure.notices,
                   result={"structural_failures": structure.failures, "notices": structure.notices})

    def summary_fields(self) -> ValidationSummary:
        """What the cycle's record keeps of it."""
        return ValidationSummary(self.valid, self.failures, self.warnings)

    def summary(self, batch: str) -> str:
        """The outcome for a person: accepted or REJECTED, then a line per failure and warning."""
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
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and high is not None:
            bounds = f" not in [{_number(low)}, {_number(high)}]"
        elif low is not None:
            bounds = f", below the minimum {_number(low)}"
        elif high is not None:
            bounds = f", above the maximum {_number(high)}"
        return f"{target}: observed {observed}{bounds}"
    if result.get("unexpected_percent") is not None:
        examples = result.get("partial_unexpected_list") or []
        example = f" (e.g. {examples[0]!r})" if examples else ""
        mostly = kwargs.get("mostly")
        allowed = f", allowed {100 * (1 - mostly):.1f}%" if mostly is not None else ""
        if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
            columns = ", ".join(kwargs.get("column_list") or [column])
            return f"{kind}({columns}): {result['unexpected_percent']:.1f}% of rows repeat another row{allowed}"
        return f"{target}: {result['unexpected_percent']:.1f}% unexpected{allowed}{example}"
    return f"{target}: failed"


def validate_batch(frame: pd.DataFrame, schema: BatchSchema, suite_path: Path,
                   row_level: ValidationSettings | None = None, two_pass: bool = True) -> ValidationOutcome:
    """Structural checks, then the suite as it is on disk now (edits apply from the next call).

    With row-level quarantine on, rows that fail row-wise critical expectations are split off
    (``rejected_rows``) and the rest is validated again on its own; the whole batch is rejected
    when their share exceeds ``max_rejected_row_share`` or the rest still fails. ``two_pass`` (`run_suite`)
    gives the verdicts and reasons of one pass at a fraction of its cost; False runs the one pass.
    """
    outcome = _validate(frame, schema, suite_path, complete=bool(row_level and row_level.row_level_quarantine),
                        two_pass=two_pass)
    if row_level is None or not row_level.row_level_quarantine or outcome.valid or not outcome.failing_rows:
        return outcome
    share = len(outcome.failing_rows) / len(frame)
    if share > row_level.max_rejected_row_share:
        outcome.failures.append(
            f"row-level quarantine: {share:.1%} of rows fail critical row checks > "
            f"{row_level.max_rejected_row_share:.1%}: the whole batch is rejected"
        )
        return outcome
    bad = frame.index.isin(list(outcome.failing_rows))
    rest = _validate(frame.loc[~bad], schema, suite_path, complete=False, two_pass=two_pass)
    if not rest.valid:
        outcome.failures.append("row-level quarantine: the rows left still fail: the whole batch is rejected")
        return outcome
    rest.warnings.insert(0, (
        f"row-level quarantine: {int(bad.sum())} row(s) ({share:.1%}) split off, failing: "
        + "; ".join(outcome.failures)
    ))
    rest.result["row_level_quarantine"] = {"rows": int(bad.sum()), "share": share, "failures": outcome.failures}
    rest.rejected_rows = frame.loc[bad]
    return rest


def _validate(frame: pd.DataFrame, schema: BatchSchema, suite_path: Path, complete: bool,
              two_pass: bool = True) -> ValidationOutcome:
    structure = check_structure(frame, schema)
    if structure.failures:
        return ValidationOutcome.structurally_broken(structure)
    suite_json = load_suite(suite_path)
    suite = parse_suite(suite_json, suite_path)
    batch_definition = _batch_definition()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": validation_view(frame, schema)})
    # COMPLETE lists every failing row's index, which row-level quarantine needs; SUMMARY is cheaper.
    detail: Any = {"result_format": "COMPLETE"} if complete else "SUMMARY"
    result = run_suite(batch, suite, detail) if two_pass else batch.validate(suite, result_format=detail)
    return read_result(result, suite_json, structure.notices, set(frame.columns), complete)


def run_suite(batch: Any, suite: Any, detail: Any) -> Any:
    """The suite on a batch in two passes, as one result: every expectation with GE's `BOOLEAN_ONLY` format
    (pass or fail, nothing else: ~3x cheaper than SUMMARY on large batches, STACK.md), then only the ones that
    failed again in the `detail` format for their reasons (observed values, unexpected shares and examples).
    The verdicts and reasons are those of one pass in `detail`; the expectations that passed keep only their
    success in the stored result."""
    import great_expectations as gx

    first = batch.validate(suite, result_format="BOOLEAN_ONLY")
    failed = [index for index, item in enumerate(first.results) if not item.success]
    if not failed:
        return first
    configs = []
    for index in failed:
        config = first.results[index].expectation_config.to_json_dict()
        config["kwargs"] = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        configs.append(config)
    second = batch.validate(gx.ExpectationSuite(name=f"{suite.name} (failed)", expectations=configs),
                            result_format=detail)
    described = {_key(item.expectation_config): item for item in second.results}
    for index in failed:
        first.results[index] = described.get(_key(first.results[index].expectation_config), first.results[index])
    return first


def _key(config: Any) -> str:
    """An expectation by what it checks (type and arguments; the batch it ran on aside)."""
    document = config.to_json_dict()
    kwargs = {k: v for k, v in document["kwargs"].items() if k != "batch_id"}
    return json.dumps({"type": document["type"], "kwargs": kwargs}, sort_keys=True, default=str)


def parse_suite(suite_json: dict[str, Any], suite_path: Path) -> Any:
    """The suite file as a GE ExpectationSuite; a malformed one is a one-line SuiteError."""
    import great_expectations as gx

    try:
        return gx.ExpectationSuite(**suite_json)
    except Exception as exc:
        raise SuiteError(f"{suite_path}: invalid expectation suite ({str(exc).splitlines()[0]})") from None


def read_result(result: Any, suite_json: dict[str, Any], notices: list[str], present: set[str],
                complete: bool = False) -> ValidationOutcome:
    """A GE validation result (any datasource) as accepted/rejected with one-line reasons by severity."""
    failing_rows: set[Any] = set()
    failures: list[str] = []
    warnings: list[str] = list(notices)
    # A column the suite lets be absent (its expect_column_to_exist is not critical, e.g. labels
    # that arrive later) is judged by that expectation alone: checks on its values apply only
    # when it is present.
    optional_absent = {
        e.get("kwargs", {}).get("column") for e in suite_json["expectations"]
        if e.get("type") == "expect_column_to_exist" and e.get("severity", "critical") != "critical"
        and e.get("kwargs", {}).get("column") not in present
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
        rows = (item.result or {}).get("unexpected_index_list")
        if severity == "critical" and rows:
            failing_rows.update(rows)
    if complete:
        # The index lists are for splitting rows, not for the record (they can hold millions).
        for item in result.results:
            (item.result or {}).pop("unexpected_index_list", None)
            (item.result or {}).pop("unexpected_list", None)
    document = result.to_json_dict()
    document["notices"] = notices
    return ValidationOutcome(valid=not failures, failures=failures, warnings=warnings, result=document,
                             failing_rows=failing_rows)
