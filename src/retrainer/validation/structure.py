"""Structural checks that run before any expectation: each failure is a one-line reason."""

from __future__ import annotations

import pandas as pd
from pandas.api import types as ptypes

from retrainer.schema import BatchSchema


def check_structure(frame: pd.DataFrame, schema: BatchSchema) -> list[str]:
    """Reasons the batch cannot even be validated (missing columns, uncoercible values, duplicate ids)."""
    failures: list[str] = []
    missing = [c for c in schema.required_columns if c not in frame.columns]
    if missing:
        failures.append(f"missing required column(s): {', '.join(missing)}")
    for name in schema.numeric:
        if name not in frame.columns or ptypes.is_numeric_dtype(frame[name]) or ptypes.is_bool_dtype(frame[name]):
            continue
        column = frame[name]
        coerced = pd.to_numeric(column, errors="coerce")
        bad = column.notna() & coerced.isna()
        if bad.any():
            example = str(column[bad].iloc[0])[:40]
            failures.append(f"column '{name}': {int(bad.sum())} value(s) are not numbers (e.g. '{example}')")
    if schema.id_column and schema.id_column in frame.columns:
        duplicated = frame[schema.id_column].duplicated(keep=False) & frame[schema.id_column].notna()
        if duplicated.any():
            failures.append(
                f"column '{schema.id_column}': {int(duplicated.sum())} rows share an id "
                f"(e.g. {frame.loc[duplicated, schema.id_column].iloc[0]!r})"
            )
    return failures
