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
from retrainer.core.schema import BatchSchema, typed_view
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
                   row_level: ValidationSettings | None = None, fast: bool = True,
                   view: pd.DataFrame | None = None) -> ValidationOutcome:
    """Structural checks, then the suite as it is on disk now (edits apply from the next call).

    With row-level quarantine on, rows that fail row-wise critical expectations are split off
    (``rejected_rows``) and the rest is validated again on its own; the whole batch is rejected
    when their share exceeds ``max_rejected_row_share`` or the rest still fails. ``fast`` (`run_suite`: by
    column, in two passes) gives the verdicts and reasons of one pass at a fraction of its cost; False runs
    GE's one pass over the whole table (kept to compare against). ``view`` is the batch's `typed_view` when
    the caller has made it already (the cycle makes it once for every step).
    """
    view = typed_view(frame, schema) if view is None else view
    outcome = _validate(frame, view, schema, suite_path,
                        complete=bool(row_level and row_level.row_level_quarantine), fast=fast)
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
    rest = _validate(frame.loc[~bad], view.loc[~bad], schema, suite_path, complete=False, fast=fast)
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


def _validate(frame: pd.DataFrame, view: pd.DataFrame, schema: BatchSchema, suite_path: Path, complete: bool,
              fast: bool = True) -> ValidationOutcome:
    structure = check_structure(frame, schema)
    if structure.failures:
        return ValidationOutcome.structurally_broken(structure)
    suite_json = load_suite(suite_path)
    suite = parse_suite(suite_json, suite_path)
    # COMPLETE lists every failing row's index, which row-level quarantine needs; SUMMARY is cheaper.
    detail: Any = {"result_format": "COMPLETE"} if complete else "SUMMARY"
    if fast:
        result = run_suite(view, suite, detail)
    else:
        result = _batch_definition().get_batch(batch_parameters={"dataframe": view}).validate(
            suite, result_format=detail)
    return read_result(result, suite_json, structure.notices, set(frame.columns), complete)


def _columns_read(expectation: Any, present: pd.Index) -> tuple[str, ...] | None:
    """The columns an expectation reads, when it reads nothing else (None: it needs the whole table, as
    table-level ones do, or one with a row condition, which may name any column)."""
    kwargs = expectation.configuration.kwargs
    if expectation.expectation_type.startswith(("expect_table_", "expect_column_to_exist")) \
            or kwargs.get("row_condition"):
        return None
    columns = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"), *(kwargs.get("column_list") or [])]
    named = tuple(dict.fromkeys(str(c) for c in columns if c is not None))
    # A column that is not there is judged on the whole table, where GE says so itself.
    return named if named and all(c in present for c in named) else None


def run_suite(view: pd.DataFrame, suite: Any, detail: Any) -> Any:
    """The suite on a batch as one GE result, each expectation evaluated by GE on the narrowest batch that
    holds what it checks, in two passes.

    - By column: an expectation on one column's values runs on a batch of that column alone (one on a pair
      or a compound key, on those columns); table-level ones (row count, columns present) and those with
      a row condition on the whole table. GE's pandas engine copies its whole batch for every column-map
      expectation (it drops the column's nulls from the frame, not from the column): at 1M rows × 50
      columns that copying, and the consolidation pandas does for it, was most of a validation
      (docs/benchmarks.md 2b).
    - Two passes: every expectation with GE's `BOOLEAN_ONLY` format (pass or fail, nothing else: ~3x
      cheaper than SUMMARY on large batches, STACK.md), then only those that failed again in the `detail`
      format for their reasons (observed values, unexpected shares and examples).
    The verdicts and reasons are those of one pass over the whole table in `detail`
    (tests/integration/test_bad_input_corpus.py); the results keep the suite's order, and the expectations
    that passed keep only their success."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.validator.validator import calc_validation_statistics

    groups: dict[tuple[str, ...] | None, list[int]] = {None: []}  # None: the whole table
    for position, expectation in enumerate(suite.expectations):
        groups.setdefault(_columns_read(expectation, view.columns), []).append(position)
    results: list[Any] = [None] * len(suite.expectations)
    table = None
    for columns, positions in groups.items():
        data = view if columns is None else view[list(columns)]
        configs = [_config(suite.expectations[position].configuration) for position in positions]
        outcome = _two_passes(data, configs, f"{suite.name} ({', '.join(columns or ['table'])})", detail)
        table = outcome if columns is None else table
        for position, item in zip(positions, _in_order(configs, outcome.results), strict=True):
            results[position] = item
    assert table is not None
    statistics = calc_validation_statistics(results)
    return ExpectationSuiteValidationResult(
        success=statistics.success, results=results, suite_name=suite.name, meta=table.meta,
        batch_id=table.batch_id,
        statistics={"evaluated_expectations": statistics.evaluated_expectations,
                    "successful_expectations": statistics.successful_expectations,
                    "unsuccessful_expectations": statistics.unsuccessful_expectations,
                    "success_percent": statistics.success_percent})


def _two_passes(data: pd.DataFrame, configs: list[dict[str, Any]], name: str, detail: Any) -> Any:
    """GE's result of `configs` on `data`: BOOLEAN_ONLY, then the failed ones again in `detail`."""
    import great_expectations as gx

    batch = _batch_definition().get_batch(batch_parameters={"dataframe": data})
    first = batch.validate(gx.ExpectationSuite(name=name, expectations=configs), result_format="BOOLEAN_ONLY")
    failed = [index for index, item in enumerate(first.results) if not item.success]
    if not failed:
        return first
    again = [_config(first.results[index].expectation_config) for index in failed]
    second = batch.validate(gx.ExpectationSuite(name=f"{name} (failed)", expectations=again), result_format=detail)
    for index, item in zip(failed, _in_order(again, second.results), strict=True):
        first.results[index] = item
    return first


def _in_order(configs: list[dict[str, Any]], results: list[Any]) -> list[Any]:
    """GE's results in the order of the configurations they were asked for (GE moves the results of
    expectations that raised to the end)."""
    waiting: dict[str, list[Any]] = {}
    for item in results:
        waiting.setdefault(_key(item.expectation_config), []).append(item)
    return [waiting[_key(config)].pop(0) for config in configs]


def _config(configuration: Any) -> dict[str, Any]:
    """An expectation's configuration as a document GE can build a suite from (the batch it ran on aside)."""
    document = configuration.to_json_dict()
    document["kwargs"] = {k: v for k, v in document["kwargs"].items() if k != "batch_id"}
    return document


def _key(config: Any) -> str:
    """An expectation by what it checks (type and arguments; the batch it ran on aside), from its configuration
    or the document `_config` made of it."""
    document = config if isinstance(config, dict) else _config(config)
    return json.dumps({"type": document["type"], "kwargs": document["kwargs"]}, sort_keys=True, default=str)


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
