"""Expectation suites as JSON files people edit: drafted from reference data, read every cycle."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import ValidationSettings
from retrainer.core.profile import distinct_columns, growing_columns
from retrainer.core.schema import BatchSchema, typed_view
from retrainer.errors import UserError

# How far a numeric column's mean may move, in reference standard deviations, before the
# batch is rejected: wide enough for real drift (which the policy handles), narrow enough to
# catch a unit change (°C → °F moves a 15 ± 8 °C mean by more than 5 sd).
MEAN_TOLERANCE_SD = 3.0
# Share of a numeric column's values outside the (widened) reference range that rejects a batch:
# a unit change on a centred column (×100) leaves its mean in place but puts nearly every value
# out of range, while real drift of a few sd moves only a tail out. Unlike a spread check, it
# holds for a batch of one row.
OUT_OF_RANGE_SHARE = 0.5
# Extra room around the reference range, as a share of that range, for the per-value check.
RANGE_MARGIN = 0.1
# A column may have this many more nulls (as a share of rows) than in the reference.
NULL_SLACK = 0.1
# A category column's values, judged on evidence seen in real streams (docs/benchmarks.md, "A new
# category"): a new value that becomes common beside the known ones is what a new site, product or
# region looks like (RAND HIE's sixth site: 40 % of rows), and is a warning: the drift and
# performance rules decide whether it needs a retrain. A broken upstream looks different: a
# re-encoding, a column swap or a shifted CSV leaves few rows with a known value; garbage brings
# many new values at once; a failed join writes a placeholder for a missing value. Those reject.
# A batch is rejected when fewer than this share of its rows hold a category the reference knew:
KNOWN_CATEGORY_SHARE = 0.5
# ... or when it holds more distinct values than the reference plus this many (at least) or half as many again:
NEW_CATEGORY_VALUES = 3
# ... or when placeholders for a missing value, which the reference never held, fill more rows than
# NULL_SLACK allows for nulls. (CSV readers already turn "", "NA", "N/A", "NULL", "None", "nan" into nulls.)
MISSING_PLACEHOLDERS = ("", "?", "-", "--", "#N/A", "<NA>", "N/A", "n/a", "NA", "na", "NULL", "null", "Null",
                        "None", "none", "nan", "NaN", "unknown", "Unknown", "UNKNOWN", "missing", "Missing",
                        "MISSING", "undefined", "not available", "Not Available")
# Row counts outside [reference / factor, reference × factor] are worth a warning.
ROW_COUNT_FACTOR = 5


class SuiteError(UserError):
    """A suite file that cannot be used; the message names the file."""


def _expectation(kind: str, severity: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": meta or {}, "severity": severity}


def _bound(value: float) -> float:
    """Six significant digits: readable in the JSON file, and never 0 for a column of 3e-8."""
    return float(f"{value:.6g}")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def draft_suite(reference: pd.DataFrame, schema: BatchSchema, name: str, settings: ValidationSettings | None = None,
                batches: int = 1) -> dict[str, Any]:
    """A first suite profiled from the reference (`batches` batches of it): a starting point a data
    engineer edits. `settings` say what it rejects beyond the columns' own checks (defaults apply)."""
    settings = settings or ValidationSettings()
    expectations: list[dict[str, Any]] = []
    reference = typed_view(reference, schema)  # value sets as the runner will compare them
    rows = max(1, len(reference) // max(1, batches))
    expectations.append(
        _expectation("expect_table_row_count_to_be_between", "warning",
                     min_value=max(1, rows // ROW_COUNT_FACTOR), max_value=rows * ROW_COUNT_FACTOR)
    )
    # A near-empty export (one row where thousands are usual) is not a batch to learn from.
    minimum = min(math.ceil(settings.min_rows_share * rows), settings.min_rows)
    if minimum >= 2:
        expectations.append(
            _expectation("expect_table_row_count_to_be_between", "critical", min_value=minimum, max_value=None))
    distinct = distinct_columns(reference, schema.features) if schema.id_column is None else []
    if distinct and settings.max_duplicate_share is not None:
        # Without ids, rows that repeat each other on the columns that tell the reference's rows apart
        # are a broken export (one row written thousands of times), not data.
        mostly = round(1 - settings.max_duplicate_share, 3)
        expectations.append(
            _expectation("expect_compound_columns_to_be_unique", "critical", column_list=distinct, mostly=mostly)
            if len(distinct) > 1 else
            _expectation("expect_column_values_to_be_unique", "critical", column=distinct[0], mostly=mostly))
    for column in schema.features:
        expectations.append(_expectation("expect_column_to_exist", "critical", column=column))
    # Labels may arrive later than features: a batch without them is monitored, not rejected.
    expectations.append(_expectation("expect_column_to_exist", "warning", column=schema.target))
    if schema.task == "classification" and schema.target in reference.columns:
        classes = sorted({_plain(v) for v in reference[schema.target].dropna().unique()}, key=str)
        expectations.append(
            _expectation("expect_column_values_to_be_in_set", "critical", column=schema.target,
                         value_set=classes, mostly=0.99)
        )
    for column in schema.features:
        null_rate = float(reference[column].isna().mean())
        mostly = round(max(0.0, 1.0 - null_rate - NULL_SLACK), 3)
        if mostly > 0:
            expectations.append(
                _expectation("expect_column_values_to_not_be_null", "critical", column=column, mostly=mostly)
            )
    growing = set(growing_columns(reference, schema))
    for column in schema.numeric:
        values = pd.to_numeric(reference[column], errors="coerce").dropna()
        if values.empty:
            continue
        low, high = float(values.min()), float(values.max())
        if column in growing:
            # Years, weeks, counters: next year is not an error. Only a value below anything the
            # reference held is worth a note; unit changes of such a column have nothing to compare with.
            expectations.append(_expectation("expect_column_values_to_be_between", "warning", column=column,
                                             mostly=0.99, min_value=_bound(low), max_value=None,
                                             meta={"notes": "grows with time: no upper bound, no critical range"}))
            continue
        margin = RANGE_MARGIN * (high - low)
        mean, sd = float(values.mean()), float(values.std(ddof=0))
        bounds: dict[str, Any] = {"min_value": _bound(low - margin), "max_value": _bound(high + margin)}
        expectations.append(_expectation("expect_column_values_to_be_between", "warning", column=column,
                                         mostly=0.99, **bounds))
        if sd > 0:  # a constant column has no spread to scale by; the range check covers it
            expectations.append(
                _expectation("expect_column_mean_to_be_between", "critical", column=column,
                             min_value=_bound(mean - MEAN_TOLERANCE_SD * sd),
                             max_value=_bound(mean + MEAN_TOLERANCE_SD * sd))
            )
        # A second, critical tier of the range check (after the mean check, whose reason reads
        # better when both fail): a few values out of range is a warning, most reject the batch.
        expectations.append(_expectation("expect_column_values_to_be_between", "critical", column=column,
                                         mostly=round(1 - OUT_OF_RANGE_SHARE, 3), **bounds))
    for column in schema.categorical:
        expectations.extend(_category_expectations(column, reference[column]))
    return {
        "name": name,
        "expectations": expectations,
        "meta": {
            "notes": "Drafted by retrainer from reference data. Edit freely: severity 'critical' "
            "rejects a batch, 'warning' and 'info' are recorded. Changes apply from the next cycle.",
        },
    }


def _category_expectations(column: str, values: pd.Series) -> list[dict[str, Any]]:
    """A category column's checks (see KNOWN_CATEGORY_SHARE): new values are a warning; a batch whose
    known values are mostly gone, that brings many new values, or placeholders instead of values, is rejected."""
    value_set = sorted({_plain(v) for v in values.dropna().unique()}, key=str)
    known = {str(v) for v in value_set}
    placeholders = [token for token in MISSING_PLACEHOLDERS if token not in known]
    checks = [
        _expectation("expect_column_values_to_be_in_set", "warning", column=column, value_set=value_set, mostly=0.99,
                     meta={"notes": "new values beside the known ones: a new normal if they persist"}),
        _expectation("expect_column_values_to_be_in_set", "critical", column=column, value_set=value_set,
                     mostly=KNOWN_CATEGORY_SHARE,
                     meta={"notes": "most rows without a known value: re-encoded, swapped or shifted"}),
        _expectation("expect_column_unique_value_count_to_be_between", "critical", column=column, min_value=None,
                     max_value=len(value_set) + max(NEW_CATEGORY_VALUES, math.ceil(len(value_set) / 2)),
                     meta={"notes": "many new values at once: not categories"}),
    ]
    if placeholders:
        checks.append(_expectation("expect_column_values_to_not_be_in_set", "critical", column=column,
                                   value_set=placeholders, mostly=round(1 - NULL_SLACK, 3),
                                   meta={"notes": "placeholders for a missing value count as nulls"}))
    return checks


def save_suite(suite: dict[str, Any], path: Path) -> None:
    """Write a suite as JSON at `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")


def load_suite(path: Path) -> dict[str, Any]:
    """The suite at `path`; raises SuiteError when it is missing, not JSON, or has no 'expectations' list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: expectation suite not found (run `retrainer init` or `retrainer suite draft`)") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: not an expectation suite (no 'expectations' list)")
    return data
