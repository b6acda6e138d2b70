"""Structural checks that run before any expectation: each finding is a one-line reason.

Failures make the batch unusable whatever the suite says (a required column is gone, numbers
do not parse, ids repeat, infinities); notices are recorded but do not reject (a new column,
missing labels, timestamps from the future).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from retrainer.schema import BatchSchema, parse_times


@dataclass
class StructureReport:
    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


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
                example = str(column[bad].iloc[0])[:40]
                report.failures.append(f"column '{name}': {int(bad.sum())} value(s) are not numbers (e.g. '{example}')")
                continue
            column = coerced
        infinite = int(np.isinf(column.to_numpy(dtype="float64", na_value=np.nan)).sum())
        if infinite:
            report.failures.append(f"column '{name}': {infinite} infinite value(s)")

    if schema.id_column and schema.id_column in frame.columns:
        ids = frame[schema.id_column]
        duplicated = ids.duplicated(keep=False) & ids.notna()
        if duplicated.any():
            report.failures.append(
                f"column '{schema.id_column}': {int(duplicated.sum())} rows share an id "
                f"(e.g. {frame.loc[duplicated, schema.id_column].iloc[0]!r})"
            )

    # A missing target column is the suite's call (expect_column_to_exist, 'warning' by default):
    # labels may arrive later than features.
    if schema.target in frame.columns:
        unlabelled = int(frame[schema.target].isna().sum())
        if 0 < unlabelled:
            report.notices.append(
                f"target '{schema.target}': {unlabelled} of {len(frame)} rows have no label "
                "(only labelled rows are scored and trained on)"
            )

    if schema.time_column and schema.time_column in frame.columns:
        times = parse_times(frame[schema.time_column])
        now = now or datetime.now(timezone.utc)
        future = times[times > pd.Timestamp(now)]
        if not future.empty:
            report.notices.append(
                f"column '{schema.time_column}': {len(future)} timestamp(s) in the future "
                f"(latest {future.max().isoformat()})"
            )
    return report
