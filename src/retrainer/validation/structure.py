"""Structural checks that run before any expectation: each finding is a one-line reason.

Failures make the batch unusable whatever the suite says (a required column is gone, numbers
do not parse, ids repeat, infinities); notices are recorded but do not reject (a new column,
missing labels, timestamps from the future).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from retrainer.core.schema import BatchSchema, parse_times


@dataclass
class StructureReport:
    """What the structural checks found: failures reject the batch, notices are only recorded."""

    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    # One wording per finding, whichever engine (pandas here, Spark in validation.spark) counted it.
    def not_numbers(self, column: str, count: int, example: object) -> None:
        """Record a numeric column's values that do not parse as numbers (a failure)."""
        self.failures.append(f"column '{column}': {count} value(s) are not numbers (e.g. '{str(example)[:40]}')")

    def infinite(self, column: str, count: int) -> None:
        """Record a numeric column's infinite values (a failure)."""
        self.failures.append(f"column '{column}': {count} infinite value(s)")

    def shared_ids(self, column: str, rows: int, example: object) -> None:
        """Record rows of the id column that share an id (a failure)."""
        self.failures.append(f"column '{column}': {rows} rows share an id (e.g. {example!r})")

    def unlabelled(self, target: str, count: int, rows: int) -> None:
        """Record rows without a label (a notice: only labelled rows are scored and trained on)."""
        self.notices.append(f"target '{target}': {count} of {rows} rows have no label "
                            "(only labelled rows are scored and trained on)")

    def future_times(self, column: str, count: int, latest: str) -> None:
        """Record timestamps later than now (a notice)."""
        self.notices.append(f"column '{column}': {count} timestamp(s) in the future (latest {latest})")


def _known_columns(schema: BatchSchema) -> set[str]:
    return {*schema.features, schema.target, *(c for c in (schema.id_column, schema.time_column) if c)}


def check_columns(columns: list[object], schema: BatchSchema, report: StructureReport) -> None:
    """Required columns that are missing (a failure) and columns the schema does not know (a notice)."""
    missing = [c for c in schema.required_columns if c not in columns]
    if missing:
        report.failures.append(f"missing required column(s): {', '.join(missing)}")
    unknown = [str(c) for c in columns if c not in _known_columns(schema)]
    if unknown:
        report.notices.append(f"schema change: unknown column(s) {', '.join(unknown)} (not used by the model)")
    # Not required (a batch is scored without them), but their loss changes what the cycle can do.
    if schema.time_column and schema.time_column not in columns:
        report.notices.append(f"schema change: time column '{schema.time_column}' is missing: this batch's "
                              "time is the wall clock (the champion's age is measured from now)")
    if schema.id_column and schema.id_column not in columns:
        report.notices.append(f"schema change: id column '{schema.id_column}' is missing: no predictions are "
                              "kept for this batch, so labels that arrive later cannot be joined to it")


def check_structure(frame: pd.DataFrame, schema: BatchSchema, now: datetime | None = None) -> StructureReport:
    """What is wrong with the batch's shape before any expectation is evaluated."""
    report = StructureReport()
    check_columns(list(frame.columns), schema, report)

    for name in schema.numeric:
        if name not in frame.columns:
            continue
        column = frame[name]
        if not ptypes.is_numeric_dtype(column) or ptypes.is_bool_dtype(column):
            coerced = pd.to_numeric(column, errors="coerce")
            bad = column.notna() & coerced.isna()
            if bad.any():
                report.not_numbers(name, int(bad.sum()), column[bad].iloc[0])
                continue
            column = coerced
        infinite = int(np.isinf(column.to_numpy(dtype="float64", na_value=np.nan)).sum())
        if infinite:
            report.infinite(name, infinite)

    if schema.id_column and schema.id_column in frame.columns:
        ids = frame[schema.id_column]
        duplicated = ids.duplicated(keep=False) & ids.notna()
        if duplicated.any():
            report.shared_ids(schema.id_column, int(duplicated.sum()), frame.loc[duplicated, schema.id_column].iloc[0])

    # A missing target column is the suite's call (expect_column_to_exist, 'warning' by default):
    # labels may arrive later than features.
    if schema.target in frame.columns:
        unlabelled = int(frame[schema.target].isna().sum())
        if unlabelled > 0:
            report.unlabelled(schema.target, unlabelled, len(frame))

    if schema.time_column and schema.time_column in frame.columns:
        times = parse_times(frame[schema.time_column])
        now = now or datetime.now(UTC)
        future = times[times > pd.Timestamp(now)]
        if not future.empty:
            report.future_times(schema.time_column, len(future), future.max().isoformat())
    return report
