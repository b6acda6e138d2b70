"""What a reference says about its columns for drafting: which grow with time, which tell rows apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer.core.profile import distinct_columns, growing_columns
from retrainer.core.schema import BatchSchema


def _schema(numeric: tuple[str, ...], time_column: str | None = None) -> BatchSchema:
    return BatchSchema(target="y", task="classification", numeric=numeric, categorical=(), time_column=time_column)


def test_calendar_and_counter_names_grow_whatever_their_values() -> None:
    frame = pd.DataFrame({"year": [2015] * 5, "survey_week": [3] * 5, "seqNo": range(5), "Counter": range(5),
                          "income": [1.0, 2.0, 3.0, 4.0, 5.0]})
    found = growing_columns(frame, _schema(("year", "survey_week", "seqNo", "Counter", "income")))
    assert found == ["year", "survey_week", "seqNo", "Counter"]


def test_a_column_moving_with_the_time_column_grows_and_a_steady_one_does_not() -> None:
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=200, freq="h")
    frame = pd.DataFrame({"when": times, "odometer": np.arange(200) * 13.5 + rng.normal(0, 1, 200),
                          "load": rng.normal(0, 1, 200)})
    assert growing_columns(frame, _schema(("odometer", "load"), "when")) == ["odometer"]


def test_whole_numbers_strictly_rising_with_row_order_are_a_sequence_but_a_few_values_are_not() -> None:
    frame = pd.DataFrame({"n": range(100, 200), "level": [1, 2, 3] * 33 + [1], "x": np.linspace(0, 1, 100)})
    # `x` rises with the rows too, but is not whole numbers: a sorted file, not a counter.
    assert growing_columns(frame, _schema(("n", "level", "x"))) == ["n"]


def test_epoch_numbers_grow() -> None:
    frame = pd.DataFrame({"logged": [1_700_000_000 + 86_400 * i for i in (3, 1, 2)], "x": [1.0, 2.0, 3.0]})
    assert growing_columns(frame, _schema(("logged", "x"))) == ["logged"]


def test_the_two_most_distinct_columns_tell_rows_apart_when_the_reference_s_rows_are_distinct() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.integers(0, 3, 1000), "b": rng.normal(size=1000), "c": rng.normal(size=1000)})
    assert distinct_columns(frame, ("a", "b", "c")) == ["b", "c"]
    assert distinct_columns(frame[["a"]], ("a",)) == []
