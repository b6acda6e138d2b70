"""Column roles (retrainer.core.schema): task, features, id and time inferred from a reference frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrainer.config import ModelSettings
from retrainer.core.schema import (
    BatchSchema,
    SchemaError,
    complete_settings,
    feature_frame,
    has_labels,
    infer_schema,
    infer_task,
    schema_from_settings,
    target_values,
    typed_view,
)

N = 100


def _reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(N) + 1000,
            "event_time": pd.date_range("2024-01-01", periods=N, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "x": rng.normal(size=N),
            "count": rng.integers(0, 50, size=N),
            "color": rng.choice(["red", "green", "blue"], size=N),
            "note": [f"customer wrote message number {i}" for i in range(N)],
            "y": rng.integers(0, 2, size=N),
        }
    )


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 1, 0, 1], "classification"),
        (["cat", "dog", "cat"], "classification"),
        ([True, False, True], "classification"),
        ([1.0, 0.0, np.nan, 1.0], "classification"),
        ([0.5, 1.25, 3.75, 2.0], "regression"),
        (list(range(50)), "regression"),
    ],
    ids=["binary-ints", "strings", "bools", "whole-floats-with-gap", "floats", "many-ints"],
)
def test_task_is_inferred_from_the_target(values: list[object], task: str) -> None:
    """Class-like targets (few integers, strings, bools) mean classification, quantities mean regression."""
    assert infer_task(pd.Series(values)) == task


def test_reference_frame_roles_are_inferred() -> None:
    """Id and time columns are set aside, free text dropped, and the rest split numeric vs categorical."""
    schema = infer_schema(_reference(), ModelSettings(target="y"))
    assert schema == BatchSchema(
        target="y",
        task="classification",
        numeric=("x", "count"),
        categorical=("color",),
        id_column="customer_id",
        time_column="event_time",
    )
    assert schema.features == ("x", "count", "color")
    assert schema.required_columns == ("x", "count", "color")


def test_datetime_column_is_the_time_column_whatever_its_name() -> None:
    """A column of datetime dtype is taken as the event time even with an unusual name."""
    frame = pd.DataFrame(
        {"recorded": pd.date_range("2024-01-01", periods=10, freq="D"), "x": np.arange(10.0), "y": np.arange(10.0) / 3}
    )
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.time_column == "recorded"
    assert schema.features == ("x",)
    assert schema.task == "regression"


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_time_named_column_with_unparseable_strings_is_not_the_time_column() -> None:
    """A column named like a time but holding non-dates is not taken as the event time."""
    frame = pd.DataFrame({"event_time": ["soon", "later"] * 5, "x": np.arange(10.0), "y": [0, 1] * 5})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.time_column is None
    assert schema.categorical == ("event_time",)


def test_numeric_column_named_time_is_a_feature() -> None:
    """A numeric column called 'time' (e.g. seconds) is kept as a numeric feature."""
    frame = pd.DataFrame({"time": np.arange(10.0), "x": np.arange(10.0), "y": [0, 1] * 5})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.time_column is None
    assert schema.numeric == ("time", "x")


def test_id_named_column_with_repeated_values_is_a_feature() -> None:
    """A '*_id' column whose values repeat (e.g. a store id) is a feature, not the row id."""
    frame = pd.DataFrame({"store_id": [1, 2, 3, 1, 2, 3], "x": np.arange(6.0), "y": [0, 1] * 3})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.id_column is None
    assert schema.numeric == ("store_id", "x")


def test_string_id_column_is_set_aside() -> None:
    """A bare 'id' column of unique strings is the row id and not a feature."""
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(30)], "x": np.arange(30.0), "y": [0, 1] * 15})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.id_column == "id"
    assert schema.features == ("x",)


def test_unique_amount_named_bid_is_a_feature_not_an_id() -> None:
    """A numeric column such as 'bid' (an auction amount, unique per row) stays a feature."""
    frame = pd.DataFrame({"bid": np.linspace(1.0, 9.0, 30), "x": np.arange(30.0), "y": [0, 1] * 15})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.id_column is None
    assert schema.numeric == ("bid", "x")


def test_bool_feature_is_categorical() -> None:
    """A boolean feature is treated as a category, not a number."""
    frame = pd.DataFrame({"flag": [True, False] * 5, "x": np.arange(10.0), "y": np.arange(10.0) / 7})
    assert infer_schema(frame, ModelSettings(target="y")).categorical == ("flag",)


def test_configured_settings_win_over_inference() -> None:
    """Task, features, categorical, id and time given in the settings are used as given."""
    settings = ModelSettings(
        target="y", task="regression", features=["count", "x"], categorical=["count"],
        id_column="note", time_column="event_time",
    )
    schema = infer_schema(_reference(), settings)
    assert schema == BatchSchema("y", "regression", ("x",), ("count",), id_column="note", time_column="event_time")


def test_missing_target_is_a_schema_error_naming_it() -> None:
    """A reference frame without the target column is refused, naming the column."""
    with pytest.raises(SchemaError, match="target column 'label' is not in the data"):
        infer_schema(_reference(), ModelSettings(target="label"))


def test_missing_configured_feature_is_a_schema_error_naming_it() -> None:
    """A configured feature absent from the data is refused, naming it."""
    with pytest.raises(SchemaError, match="feature column\\(s\\) not in the data: humidity"):
        infer_schema(_reference(), ModelSettings(target="y", features=["x", "humidity"]))


def test_no_feature_left_is_a_schema_error() -> None:
    """A frame with only the target, an id and a time column is refused."""
    frame = _reference()[["customer_id", "event_time", "y"]]
    with pytest.raises(SchemaError, match="no feature columns left"):
        infer_schema(frame, ModelSettings(target="y"))


def test_completed_settings_give_back_the_same_schema() -> None:
    """Writing the inferred schema into the settings and reading it back gives the same schema."""
    settings = ModelSettings(target="y", name="churn")
    schema = infer_schema(_reference(), settings)
    completed = complete_settings(settings, schema)
    assert completed.features == ["x", "count", "color"]
    assert schema_from_settings(completed) == schema


def test_uninitialised_settings_are_a_schema_error() -> None:
    """Settings without inferred columns ask the user to run init first."""
    with pytest.raises(SchemaError, match="model 'churn' is not initialised"):
        schema_from_settings(ModelSettings(target="y", name="churn"))


def test_feature_frame_keeps_features_and_casts_them() -> None:
    """The model input holds the features only: numbers as floats (bad ones NaN), categories as strings."""
    schema = BatchSchema("y", "classification", numeric=("x",), categorical=("color",))
    frame = pd.DataFrame({"y": [1, 0, 1], "color": ["red", None, 3], "x": ["1.5", "oops", 2], "extra": [0, 0, 0]})
    features = feature_frame(frame, schema)
    assert list(features.columns) == ["x", "color"]
    assert str(features["x"].dtype) == "float64"
    assert features["x"].tolist()[0] == 1.5
    assert np.isnan(features["x"].tolist()[1])
    assert features["x"].tolist()[2] == 2.0
    assert features["color"].tolist() == ["red", "<missing>", "3"]


def test_integer_category_code_is_the_same_string_when_a_gap_makes_it_float() -> None:
    """A numeric category code is the same category whether its column was read as int or as float."""
    schema = BatchSchema("y", "classification", numeric=(), categorical=("store",))
    ints = feature_frame(pd.DataFrame({"store": [3, 4]}), schema)
    floats = feature_frame(pd.DataFrame({"store": [3.0, np.nan]}), schema)
    assert floats["store"].tolist() == [ints["store"].tolist()[0], "<missing>"]


def test_target_values_map_1_and_1_0_to_the_same_class() -> None:
    """Class labels 1 and 1.0 (a CSV column with a gap) become the same class string, gaps become None."""
    schema = BatchSchema("y", "classification", numeric=("x",), categorical=())
    from_ints = target_values(pd.DataFrame({"y": [1, 0, 1]}), schema)
    from_floats = target_values(pd.DataFrame({"y": [1.0, np.nan, 0.0]}), schema)
    assert from_ints.tolist() == ["1", "0", "1"]
    assert from_floats.tolist() == ["1", None, "0"]


def test_target_values_keep_string_classes_and_regression_floats() -> None:
    """String classes stay as written; regression targets become floats."""
    classes = BatchSchema("y", "classification", numeric=("x",), categorical=())
    quantities = BatchSchema("y", "regression", numeric=("x",), categorical=())
    assert target_values(pd.DataFrame({"y": ["ok", "fault"]}), classes).tolist() == ["ok", "fault"]
    values = target_values(pd.DataFrame({"y": [1, "2.5", None]}), quantities)
    assert str(values.dtype) == "float64"
    assert values.tolist()[:2] == [1.0, 2.5]
    assert np.isnan(values.tolist()[2])


def test_has_labels_needs_at_least_one_label() -> None:
    """A batch has labels only if the target column exists and holds at least one value."""
    schema = BatchSchema("y", "classification", numeric=("x",), categorical=())
    assert has_labels(pd.DataFrame({"x": [1.0], "y": [1]}), schema) is True
    assert has_labels(pd.DataFrame({"x": [1.0], "y": [None]}), schema) is False
    assert has_labels(pd.DataFrame({"x": [1.0]}), schema) is False


def test_epoch_seconds_named_timestamp_is_the_time_column_not_a_feature() -> None:
    """Epoch seconds in a column called 'timestamp' are the clock, so they never drift as a feature."""
    frame = pd.DataFrame({"timestamp": 1_767_225_600 + np.arange(10) * 60, "x": np.arange(10.0), "y": [0, 1] * 5})
    schema = infer_schema(frame, ModelSettings(target="y"))
    assert schema.time_column == "timestamp"
    assert schema.numeric == ("x",)


def test_all_missing_column_is_not_a_feature() -> None:
    """A column with no values at all is left out of the features."""
    frame = pd.DataFrame({"empty": [np.nan] * 6, "x": np.arange(6.0), "y": [0, 1] * 3})
    assert infer_schema(frame, ModelSettings(target="y")).features == ("x",)


def test_typed_view_formats_class_labels_value_by_value() -> None:
    """One stray 0.5 label does not turn every other label into '0.0' or '1.0'."""
    from retrainer.core.schema import typed_view

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 1.0, 0.5, np.nan]})
    schema = infer_schema(frame.iloc[:2], ModelSettings(target="y", task="classification"))
    assert list(typed_view(frame, schema)["y"]) == ["0", "1", "0.5", None]


def test_typed_view_types_a_batch_as_the_schema_says_so_stored_batches_concatenate() -> None:
    """Numbers that arrived as text become numbers, categories and classes text, ids and times untouched;
    two batches of different delivered types then concatenate into one parquet-writable frame."""
    schema = BatchSchema(target="y", task="classification", numeric=("x", "flag"), categorical=("site",),
                         id_column="id", time_column="ts")
    on_time = pd.DataFrame({"x": [1.5, 2.0], "flag": [True, False], "site": [3, 4], "y": [0, 1],
                            "id": [10, 11], "ts": ["2026-01-01", "2026-01-02"]})
    retyped = pd.DataFrame({"x": ["2.5", None], "flag": [1.0, 0.0], "site": ["3", "a"], "y": ["1", "0"],
                            "id": [12, 13], "ts": ["2026-01-03", "2026-01-04"]})
    first, second = typed_view(on_time, schema), typed_view(retyped, schema)
    assert second["x"].tolist()[0] == 2.5
    assert pd.isna(second["x"].tolist()[1])
    assert str(first["flag"].dtype) == "float64"
    assert first["site"].tolist() == ["3", "4"]
    assert first["y"].tolist() == ["0", "1"]
    assert second["y"].tolist() == ["1", "0"]
    assert first["id"].tolist() == [10, 11]
    assert first["ts"].tolist() == on_time["ts"].tolist()
    assert retyped["x"].tolist() == ["2.5", None], "the delivered frame is not changed"
    import io

    pd.concat([first, second], ignore_index=True).to_parquet(io.BytesIO())


def test_typed_view_makes_a_regression_target_numeric() -> None:
    schema = BatchSchema(target="y", task="regression", numeric=("x",), categorical=())
    typed = typed_view(pd.DataFrame({"x": [1.0], "y": ["3.25"]}), schema)
    assert typed["y"].tolist() == [3.25]
