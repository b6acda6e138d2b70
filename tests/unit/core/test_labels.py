"""Late labels (retrainer.core.labels): matched to batch rows by id, scored with the champion-of-the-time's predictions."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.core.labels import LabelsError, batch_metrics, join_labels, prediction_frame, prepare_labels
from retrainer.core.schema import BatchSchema

SCHEMA = BatchSchema(
    target="failure",
    task="classification",
    numeric=("temp_c", "vibration"),
    categorical=("site",),
    id_column="reading_id",
    time_column="event_time",
)
REGRESSION = BatchSchema(
    target="output_kw",
    task="regression",
    numeric=("temp_c",),
    categorical=(),
    id_column="reading_id",
)


def _labels(ids: list[object], values: list[object], schema: BatchSchema = SCHEMA) -> pd.Series:
    return prepare_labels(pd.DataFrame({schema.id_column: ids, schema.target: values}), schema).labels


def _batch(ids: list[object], failure: list[object] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"reading_id": ids, "temp_c": [float(i) for i in range(len(ids))]})
    if failure is not None:
        frame["failure"] = failure
    return frame


# --- prepare_labels ---------------------------------------------------------------------------


def test_a_labels_file_without_the_id_column_is_refused_naming_it() -> None:
    """A labels file lacking the id column is refused with a reason that names the column."""
    with pytest.raises(LabelsError, match=r"missing column\(s\) reading_id:"):
        prepare_labels(pd.DataFrame({"failure": [1, 0]}), SCHEMA)


def test_a_labels_file_without_the_target_column_is_refused_naming_it() -> None:
    """A labels file lacking the target column is refused with a reason that names the target."""
    with pytest.raises(LabelsError, match=r"missing column\(s\) failure:"):
        prepare_labels(pd.DataFrame({"reading_id": [1, 2]}), SCHEMA)


def test_a_labels_file_without_both_columns_names_both() -> None:
    """A labels file with neither id nor target names both missing columns."""
    with pytest.raises(LabelsError, match=r"missing column\(s\) reading_id, failure:"):
        prepare_labels(pd.DataFrame({"other": [1]}), SCHEMA)


def test_labels_are_refused_when_the_model_has_no_id_column() -> None:
    """Without an id column in the model, late labels cannot be matched and are refused, saying so."""
    schema = BatchSchema(target="failure", task="classification", numeric=("temp_c",), categorical=())
    with pytest.raises(LabelsError, match="no id column"):
        prepare_labels(pd.DataFrame({"reading_id": [1], "failure": [1]}), schema)


def test_labels_are_indexed_by_the_id_as_text_and_classes_as_text() -> None:
    """Labels come back keyed by the id's printed form, with class labels as text."""
    prepared = prepare_labels(pd.DataFrame({"reading_id": [17, 18], "failure": [1, 0]}), SCHEMA)
    assert prepared.labels.to_dict() == {"17": "1", "18": "0"}
    assert prepared.labels.name == "failure"
    assert prepared.duplicate_ids == 0
    assert prepared.unusable.empty


def test_ids_are_stripped_of_surrounding_spaces() -> None:
    """An id written with surrounding spaces still matches the row's id."""
    prepared = prepare_labels(pd.DataFrame({"reading_id": [" 17 "], "failure": [1]}), SCHEMA)
    assert list(prepared.labels.index) == ["17"]


def test_rows_without_id_or_label_are_returned_as_unusable() -> None:
    """Lines with a missing or blank id, or a missing label, are set aside as unusable, not used."""
    frame = pd.DataFrame({
        "reading_id": ["17", None, "", "20", "21"],
        "failure": [1, 1, 0, None, 0],
    })
    prepared = prepare_labels(frame, SCHEMA)
    assert prepared.labels.to_dict() == {"17": "1", "21": "0"}
    assert list(prepared.unusable.index) == [1, 2, 3]
    assert list(prepared.unusable.columns) == ["reading_id", "failure"]


def test_a_duplicate_id_keeps_the_last_line_and_is_counted() -> None:
    """When an id appears twice, the later line wins and the duplicate is counted."""
    frame = pd.DataFrame({"reading_id": [17, 18, 17, 17], "failure": [0, 1, 0, 1]})
    prepared = prepare_labels(frame, SCHEMA)
    assert prepared.labels.to_dict() == {"17": "1", "18": "1"}
    assert prepared.duplicate_ids == 2


def test_regression_labels_are_numbers() -> None:
    """A regression model's labels are floats, keyed by id text."""
    prepared = prepare_labels(pd.DataFrame({"reading_id": [1, 2], "output_kw": ["2.5", 3]}), REGRESSION)
    assert prepared.labels.to_dict() == {"1": 2.5, "2": 3.0}
    assert prepared.labels.dtype == np.float64


# --- join_labels ------------------------------------------------------------------------------


def test_an_integer_id_in_the_labels_matches_the_same_id_as_text_in_the_batch() -> None:
    """A label for id 17 (a number, as CSV gives it) fills the batch row whose id is the text "17"."""
    labels = _labels([17], [1])
    joined = join_labels(_batch(["17", "18"], [None, None]), labels, SCHEMA)
    assert joined.newly_labelled == 1
    assert joined.matched_ids == {"17"}
    assert joined.frame["failure"].tolist()[0] == "1"
    assert pd.isna(joined.frame["failure"].tolist()[1])


def test_join_fills_only_missing_targets_and_keeps_existing_labels() -> None:
    """Late labels fill rows without a label; a row that already has one keeps it and is counted."""
    batch = _batch(["a", "b", "c", "d"], ["0", None, "1", None])
    labels = _labels(["a", "b", "c", "zz"], [1, 1, 0, 1])
    joined = join_labels(batch, labels, SCHEMA)
    assert joined.frame["failure"].tolist()[:3] == ["0", "1", "1"]
    assert pd.isna(joined.frame["failure"].iloc[3])
    assert joined.newly_labelled == 1
    assert joined.already_labelled == 2
    assert joined.matched_ids == {"a", "b", "c"}


def test_join_does_not_change_the_batch_it_was_given() -> None:
    """Joining returns a new frame; the batch passed in is left as it was."""
    batch = _batch(["a"], [None])
    join_labels(batch, _labels(["a"], [1]), SCHEMA)
    assert batch["failure"].isna().all()


def test_join_adds_the_target_column_when_the_batch_came_without_one() -> None:
    """A batch that arrived without a label column gets one, filled where labels exist."""
    batch = _batch(["17", "18", "20"])
    joined = join_labels(batch, _labels([17, 18], [1, 0]), SCHEMA)
    assert joined.frame["failure"].tolist()[:2] == ["1", "0"]
    assert pd.isna(joined.frame["failure"].iloc[2])
    assert joined.newly_labelled == 2
    assert joined.already_labelled == 0
    assert joined.matched_ids == {"17", "18"}
    assert list(joined.frame.columns) == ["reading_id", "temp_c", "failure"]


def test_join_with_no_matching_id_labels_nothing() -> None:
    """Labels for rows the batch does not hold change nothing and match nothing."""
    batch = _batch(["a", "b"], [None, None])
    joined = join_labels(batch, _labels(["x"], [1]), SCHEMA)
    assert joined.newly_labelled == 0
    assert joined.already_labelled == 0
    assert joined.matched_ids == set()
    assert joined.frame["failure"].isna().all()


def test_regression_join_fills_missing_quantities() -> None:
    """A regression batch's missing targets are filled with the late numbers; present ones are kept."""
    batch = pd.DataFrame({"reading_id": [1, 2], "temp_c": [0.0, 1.0], "output_kw": [np.nan, 7.0]})
    joined = join_labels(batch, _labels([1, 2], [2.5, 9.0], REGRESSION), REGRESSION)
    assert joined.frame["output_kw"].tolist() == [2.5, 7.0]
    assert joined.newly_labelled == 1
    assert joined.already_labelled == 1


# --- prediction_frame and batch_metrics -------------------------------------------------------


def test_prediction_frame_keeps_ids_as_text_predictions_and_one_probability_column_per_class() -> None:
    """What a cycle keeps for late labels: the id as text, the prediction, and a probability per class."""
    probabilities = pd.DataFrame([[0.9, 0.1], [0.2, 0.8]])
    frame = prediction_frame(pd.Series([17, 18]), pd.Series(["0", "1"]), probabilities, ["0", "1"])
    assert list(frame.columns) == ["id", "prediction", "probability__0", "probability__1"]
    assert frame["id"].tolist() == ["17", "18"]
    assert frame["prediction"].tolist() == ["0", "1"]
    assert frame["probability__1"].tolist() == [0.1, 0.8]


def test_prediction_frame_without_probabilities_has_no_probability_columns() -> None:
    """A model without probabilities keeps only ids and predictions."""
    frame = prediction_frame(pd.Series(["a"]), pd.Series([3.5]), None, None)
    assert list(frame.columns) == ["id", "prediction"]


def test_batch_metrics_score_the_predictions_made_at_the_time_on_the_labelled_rows() -> None:
    """The batch's metrics are the stored predictions' accuracy on the rows that now have labels, ROC AUC included."""
    batch = _batch([1, 2, 3, 4, 5], ["1", "0", "1", "0", None])
    probabilities = pd.DataFrame([[0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.9, 0.1], [0.5, 0.5]])
    # Predictions 1,1,0,0,(0) against labels 1,0,1,0,(missing): 2 of 4 right.
    predictions = prediction_frame(pd.Series(["1", "2", "3", "4", "5"]), pd.Series(["1", "1", "0", "0", "0"]),
                                   probabilities, ["0", "1"])
    metrics, rows = batch_metrics(batch, predictions, SCHEMA)
    assert rows == 4
    assert metrics["accuracy"] == pytest.approx(0.5)
    # positive class "1": predicted for rows 1 and 2, truly rows 1 and 3
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    # scores of positives 0.8, 0.3 vs negatives 0.4, 0.1: 3 of 4 pairs ordered right
    assert metrics["roc_auc"] == pytest.approx(0.75)


def test_batch_metrics_only_count_rows_with_a_stored_prediction() -> None:
    """Labelled rows the champion never scored are left out of the batch's metrics and its row count."""
    batch = _batch(["a", "b", "c"], ["1", "1", "0"])
    predictions = prediction_frame(pd.Series(["a", "c"]), pd.Series(["1", "1"]), None, None)
    metrics, rows = batch_metrics(batch, predictions, SCHEMA)
    assert rows == 2
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert "roc_auc" not in metrics


def test_a_repeated_id_counts_once_in_the_batch_metrics() -> None:
    """An id appearing twice in the batch does not multiply rows: the metric is over distinct rows."""
    batch = _batch([1, 1, 2], ["1", "1", "0"])
    predictions = prediction_frame(pd.Series(["1", "1", "2"]), pd.Series(["1", "0", "1"]), None, None)
    metrics, rows = batch_metrics(batch, predictions, SCHEMA)
    assert rows == 2
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_batch_metrics_leave_out_roc_auc_when_only_one_class_is_labelled() -> None:
    """With probabilities but one class among the labels, ROC AUC is left out rather than made up."""
    batch = _batch(["a", "b"], ["1", "1"])
    predictions = prediction_frame(pd.Series(["a", "b"]), pd.Series(["1", "0"]),
                                   pd.DataFrame([[0.1, 0.9], [0.6, 0.4]]), ["0", "1"])
    metrics, rows = batch_metrics(batch, predictions, SCHEMA)
    assert rows == 2
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert "roc_auc" not in metrics


def test_batch_metrics_after_a_join_use_the_late_labels() -> None:
    """Once late labels are joined, the batch is scored on them (numeric labels match text predictions)."""
    batch = _batch([17, 18, 19], [None, None, None])
    joined = join_labels(batch, _labels([17, 18, 19], [1, 0, 0]), SCHEMA)
    predictions = prediction_frame(batch["reading_id"], pd.Series(["1", "1", "0"]), None, None)
    metrics, rows = batch_metrics(joined.frame, predictions, SCHEMA)
    assert rows == 3
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_batch_metrics_are_empty_when_nothing_is_labelled() -> None:
    """A batch whose rows are all still unlabelled gives no metrics and zero rows."""
    batch = _batch(["a", "b"], [None, None])
    predictions = prediction_frame(pd.Series(["a", "b"]), pd.Series(["1", "0"]), None, None)
    assert batch_metrics(batch, predictions, SCHEMA) == ({}, 0)


def test_batch_metrics_are_empty_when_no_labelled_row_was_predicted() -> None:
    """Labels for rows with no stored prediction give no metrics and zero rows."""
    batch = _batch(["a"], ["1"])
    predictions = prediction_frame(pd.Series(["b"]), pd.Series(["1"]), None, None)
    assert batch_metrics(batch, predictions, SCHEMA) == ({}, 0)


def test_regression_batch_metrics_give_rmse_and_mae() -> None:
    """A regression batch is scored with RMSE and MAE on its labelled rows."""
    batch = pd.DataFrame({"reading_id": [1, 2, 3], "temp_c": [0.0, 0.0, 0.0], "output_kw": [2.0, 5.0, np.nan]})
    predictions = prediction_frame(pd.Series([1, 2, 3]), pd.Series([3.0, 2.0, 100.0]), None, None)
    metrics, rows = batch_metrics(batch, predictions, REGRESSION)
    assert rows == 2
    assert set(metrics) == {"rmse", "mae"}
    # errors 1 and 3
    assert metrics["mae"] == pytest.approx(2.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt(5.0))


# --- awkward inputs: gaps in ids and labels, missing target columns ----------------------------


def test_a_labels_csv_with_a_blank_id_still_matches_the_other_ids() -> None:
    """One line without an id must not stop the other lines of a CSV labels file from matching their rows."""
    frame = pd.read_csv(io.StringIO("reading_id,failure\n17,1\n,0\n"))
    prepared = prepare_labels(frame, SCHEMA)
    assert list(prepared.labels.index) == ["17"]


def test_regression_join_adds_the_target_column_when_the_batch_came_without_one() -> None:
    """A regression batch that arrived without its target column gets it filled from late labels."""
    batch = pd.DataFrame({"reading_id": [1, 2], "temp_c": [0.0, 1.0]})
    joined = join_labels(batch, _labels([1], [2.5], REGRESSION), REGRESSION)
    assert joined.frame["output_kw"].iloc[0] == 2.5
    assert pd.isna(joined.frame["output_kw"].iloc[1])


def test_a_partly_labelled_numeric_target_can_be_stored_after_the_join(tmp_path: Path) -> None:
    """A batch whose 0/1 labels had gaps can be written back to parquet once late labels fill them."""
    batch = _batch([17, 18, 19], [0, np.nan, 1])
    joined = join_labels(batch, _labels([18], [1]), SCHEMA)
    joined.frame.to_parquet(tmp_path / "batch.parquet", index=False)
    assert pd.read_parquet(tmp_path / "batch.parquet")["failure"].notna().all()


def test_batch_metrics_are_empty_when_the_batch_has_no_target_column() -> None:
    """A batch without a label column has nothing labelled: no metrics and zero rows."""
    predictions = prediction_frame(pd.Series(["a"]), pd.Series(["1"]), None, None)
    assert batch_metrics(_batch(["a"]), predictions, SCHEMA) == ({}, 0)
