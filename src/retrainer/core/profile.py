"""What a reference says about its columns, for drafting a suite (pure pandas).

Two questions a drafted suite must answer from one reference before it has seen a second batch:
which numeric columns grow with time (their reference range will not hold for long: years, weeks,
sequence numbers, counters, timestamps stored as numbers), and which columns tell rows apart (a
batch whose rows repeat each other there is a broken export).
"""

from __future__ import annotations

import re

import pandas as pd

from retrainer.core.schema import BatchSchema, is_whole, parse_times

# Words in a column's name that say its values follow the calendar or a count that only grows. Cyclic
# ones (month, day, hour) are here too: one reference rarely covers a whole cycle.
TIME_WORDS = frozenset({
    "year", "years", "yr", "yyyy", "quarter", "qtr", "month", "months", "week", "weeks", "wk", "day", "days",
    "hour", "hours", "date", "time", "timestamp", "ts", "epoch", "period", "seq", "sequence", "counter",
    "version", "release", "season", "vintage", "cohort",
})
# A column this closely rank-correlated with the time column moves with the clock.
TREND_CORRELATION = 0.9
# Fewer distinct values than this are too few to call a trend.
MIN_TREND_VALUES = 3
# Whole numbers rising with the rows' order, this closely and over this many distinct values, are a
# sequence number or a counter (a file sorted by an ordinary feature is rarely sorted this strictly
# and also named like one; such a column only loses its critical range).
ORDER_CORRELATION = 0.99
MIN_ORDER_VALUES = 10
# A reference whose rows are this distinct on its most distinct columns can tell a repeated row from
# a legitimate one; categorical data with many equal rows cannot.
DISTINCT_ROW_SHARE = 0.95


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return {word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word}


def _rank_correlation(a: pd.Series, b: pd.Series, min_values: int = MIN_TREND_VALUES) -> float:
    if a.nunique() < min_values or b.nunique() < 2:
        return 0.0
    value = a.rank().corr(b.rank())
    return 0.0 if pd.isna(value) else float(value)


def growing_columns(reference: pd.DataFrame, schema: BatchSchema) -> list[str]:
    """The numeric features whose values move with time, so a range drafted from the reference would
    reject the future: named like a calendar field or a counter, rank-correlated with the time column,
    whole numbers rising with the rows' order, or numbers that read as epoch timestamps."""
    times = None
    if schema.time_column and schema.time_column in reference.columns:
        parsed = parse_times(reference[schema.time_column])
        if len(parsed) == len(reference):
            times = pd.Series(parsed.to_numpy(), index=reference.index).astype("int64")
    found = []
    for column in schema.numeric:
        if column not in reference.columns:
            continue
        values = pd.to_numeric(reference[column], errors="coerce")
        present = values.dropna()
        if _words(column) & TIME_WORDS or times is not None and abs(_rank_correlation(values, times)) >= TREND_CORRELATION or not present.empty and is_whole(present) and _rank_correlation(
                present, pd.Series(range(len(present)), index=present.index, dtype=float),
                MIN_ORDER_VALUES) >= ORDER_CORRELATION or not present.empty and len(parse_times(present)) == len(present):
            found.append(column)
    return found


def distinct_columns(reference: pd.DataFrame, columns: tuple[str, ...], at_most: int = 2) -> list[str]:
    """Up to `at_most` of `columns` that best tell the reference's rows apart (most distinct values
    first), when together they make at least `DISTINCT_ROW_SHARE` of its rows unique; else none."""
    present = [c for c in columns if c in reference.columns]
    if reference.empty or not present:
        return []
    ranked = sorted(present, key=lambda c: (-reference[c].nunique(dropna=True), present.index(c)))[:at_most]
    unique_share = float((~reference[ranked].duplicated(keep=False)).mean())
    return ranked if unique_share >= DISTINCT_ROW_SHARE else []
