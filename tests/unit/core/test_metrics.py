"""Metrics (retrainer.core.metrics): the primary metric, its per-row losses, and relative drops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrainer.core.metrics import MetricSpec, metric_from_losses, primary_metric, relative_drop, row_losses, score

ACCURACY = primary_metric("classification")
RMSE = primary_metric("regression")


def test_primary_metrics_are_accuracy_and_rmse() -> None:
    """Classification is judged on accuracy (higher better), regression on RMSE (lower better)."""
    assert MetricSpec("accuracy", True) == ACCURACY
    assert MetricSpec("rmse", False) == RMSE


def test_accuracy_counts_matching_labels() -> None:
    """Accuracy is the share of predicted labels equal to the true ones."""
    assert score("classification", ["a", "b", "a", "b"], ["a", "b", "b", "b"]) == 0.75


def test_rmse_is_the_root_of_the_mean_squared_error() -> None:
    """RMSE is the square root of the mean squared error."""
    assert score("regression", [0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 3.0, -3.0]) == pytest.approx(math.sqrt(5.0))


def test_row_losses_are_zero_one_errors_or_squared_errors() -> None:
    """Per-row losses are 0/1 errors for classes and squared errors for quantities."""
    assert row_losses("classification", ["a", "b", "c"], ["a", "c", "c"]).tolist() == [0.0, 1.0, 0.0]
    assert row_losses("regression", [1.0, 2.0, 3.0], [1.5, 2.0, 1.0]).tolist() == [0.25, 0.0, 4.0]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_metric_from_losses_matches_score(task: str) -> None:
    """Aggregating the per-row losses gives exactly the task's metric."""
    rng = np.random.default_rng(5)
    if task == "classification":
        y = rng.choice(["x", "y", "z"], size=200).astype(object)
        pred = rng.choice(["x", "y", "z"], size=200).astype(object)
    else:
        y = rng.normal(size=200)
        pred = y + rng.normal(scale=0.7, size=200)
    losses = row_losses(task, y, pred)  # type: ignore[arg-type]
    assert float(metric_from_losses(task, losses)) == pytest.approx(score(task, y, pred))  # type: ignore[arg-type]


def test_metric_from_losses_is_vectorised_over_resamples() -> None:
    """A 2-D array of losses gives one metric per row (per bootstrap resample)."""
    losses = np.array([[0.0, 1.0, 1.0, 0.0], [4.0, 4.0, 4.0, 4.0]])
    assert metric_from_losses("classification", losses).tolist() == [0.5, -3.0]
    assert metric_from_losses("regression", losses).tolist() == [pytest.approx(math.sqrt(0.5)), 2.0]


def test_relative_drop_is_positive_when_accuracy_falls() -> None:
    """A lower accuracy is a positive drop, as a fraction of the reference."""
    assert relative_drop(ACCURACY, 0.8, 0.6) == pytest.approx(0.25)


def test_relative_drop_is_negative_when_accuracy_rises() -> None:
    """A higher accuracy is a negative drop (not worse)."""
    assert relative_drop(ACCURACY, 0.8, 0.9) == pytest.approx(-0.125)


def test_relative_drop_is_positive_when_rmse_rises() -> None:
    """For RMSE, a higher value is a positive drop in performance."""
    assert relative_drop(RMSE, 2.0, 2.5) == pytest.approx(0.25)


def test_relative_drop_is_negative_when_rmse_falls() -> None:
    """For RMSE, a lower value is a negative drop (not worse)."""
    assert relative_drop(RMSE, 2.0, 1.5) == pytest.approx(-0.25)


def test_relative_drop_uses_the_size_of_a_negative_reference() -> None:
    """With a negative reference (e.g. an R² below zero), the sign still follows better/worse."""
    r2 = MetricSpec("r2", True)
    assert relative_drop(r2, -0.5, -1.0) == pytest.approx(1.0)
    assert relative_drop(r2, -0.5, 0.0) == pytest.approx(-1.0)


def test_relative_drop_from_a_zero_reference() -> None:
    """From a perfect RMSE of zero, any error is infinitely worse and no error is no drop."""
    assert relative_drop(RMSE, 0.0, 0.0) == 0.0
    assert relative_drop(RMSE, 0.0, 0.1) == math.inf


def test_relative_drop_from_a_zero_accuracy_reference_is_not_worse_when_accuracy_rises() -> None:
    """Rising from an accuracy of zero is not reported as a drop."""
    assert relative_drop(ACCURACY, 0.0, 0.5) <= 0


# --- all metrics -----------------------------------------------------------------------------

from retrainer.core.metrics import all_metrics  # noqa: E402

# positive class "yes" (last of the sorted classes): TP 2 (rows 1, 4), FP 1 (row 0), FN 2 (rows 2, 5), TN 1 (row 3)
BINARY_TRUE = ["no", "yes", "yes", "no", "yes", "yes"]
BINARY_PRED = ["yes", "yes", "no", "no", "yes", "no"]
# P(yes) per row; above 0.5 exactly where "yes" is predicted
BINARY_PROBABILITY_YES = [0.6, 0.9, 0.4, 0.2, 0.8, 0.3]


def _binary_probabilities() -> np.ndarray:
    yes = np.array(BINARY_PROBABILITY_YES)
    return np.column_stack([1 - yes, yes])


def test_binary_metrics_are_for_the_last_sorted_class() -> None:
    """With string labels 'no'/'yes', precision, recall and F1 are those of 'yes', the last sorted class."""
    metrics = all_metrics("classification", BINARY_TRUE, BINARY_PRED)
    assert set(metrics) == {"accuracy", "f1", "precision", "recall"}
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 4)
    assert metrics["f1"] == pytest.approx(4 / 7)


def test_binary_metrics_with_the_model_classes_given() -> None:
    """Passing the model's classes gives the same positive class and adds ROC AUC from the probabilities."""
    metrics = all_metrics("classification", BINARY_TRUE, BINARY_PRED, _binary_probabilities(), ["no", "yes"])
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 4)
    # 6 of the 8 (yes, no) pairs rank the 'yes' row higher
    assert metrics["roc_auc"] == pytest.approx(6 / 8)


def test_roc_auc_needs_probabilities() -> None:
    """Without probabilities (or without the model's classes) no ROC AUC is reported."""
    assert "roc_auc" not in all_metrics("classification", BINARY_TRUE, BINARY_PRED, None, ["no", "yes"])
    assert "roc_auc" not in all_metrics("classification", BINARY_TRUE, BINARY_PRED, _binary_probabilities())


def test_roc_auc_is_left_out_when_the_batch_holds_one_class() -> None:
    """A batch whose labels are all one class has no ROC AUC, rather than a made-up one; the rest is still there."""
    true = ["yes", "yes", "yes"]
    pred = ["yes", "no", "yes"]
    probabilities = np.array([[0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    metrics = all_metrics("classification", true, pred, probabilities, ["no", "yes"])
    assert "roc_auc" not in metrics
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["precision"] == pytest.approx(1.0)


# unbalanced (supports 3, 1, 2), so a macro average differs from a weighted one
MULTI_TRUE = ["a", "a", "a", "b", "c", "c"]
MULTI_PRED = ["a", "a", "b", "b", "c", "a"]


def test_multiclass_metrics_are_macro_averages() -> None:
    """With three classes, precision, recall and F1 are the unweighted means over the classes."""
    metrics = all_metrics("classification", MULTI_TRUE, MULTI_PRED)
    # per class: a P 2/3 R 2/3 F 2/3; b P 1/2 R 1 F 2/3; c P 1 R 1/2 F 2/3
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert metrics["recall"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    # (weighted by support, precision would be 0.75 and recall the accuracy, 4/6)


def test_multiclass_roc_auc_only_when_every_class_occurs() -> None:
    """Multiclass ROC AUC (one-vs-rest) is reported when every class is in the batch, left out otherwise."""
    probabilities = np.array([
        [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4],
    ])
    metrics = all_metrics("classification", MULTI_TRUE, MULTI_PRED, probabilities, ["a", "b", "c"])
    # one-vs-rest: a ranks 8 of 9 pairs right (row 2's 0.3 is below row 5's 0.5), b and c all; macro mean
    assert metrics["roc_auc"] == pytest.approx((8 / 9 + 1 + 1) / 3)
    without_c = all_metrics("classification", MULTI_TRUE[:4], MULTI_PRED[:4], probabilities[:4], ["a", "b", "c"])
    assert "roc_auc" not in without_c


def test_regression_metrics_are_rmse_and_mae() -> None:
    """Regression reports exactly RMSE and MAE."""
    metrics = all_metrics("regression", [0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 3.0, -3.0])
    assert metrics == {"rmse": pytest.approx(math.sqrt(5.0)), "mae": pytest.approx(2.0)}


def test_the_standard_error_of_accuracy_is_that_of_a_proportion() -> None:
    from retrainer.core.metrics import metric_std_error

    truth = np.array([1] * 70 + [0] * 30)
    predicted = np.ones(100, dtype=int)  # 70 % right
    assert metric_std_error("classification", truth, predicted) == pytest.approx(np.sqrt(0.7 * 0.3 / 99), rel=1e-6)
    assert metric_std_error("classification", truth[:1], predicted[:1]) is None


def test_the_standard_error_of_rmse_shrinks_with_rows_and_is_zero_for_a_perfect_fit() -> None:
    from retrainer.core.metrics import metric_std_error

    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 1, 100), rng.normal(0, 1, 10_000)
    se_small = metric_std_error("regression", small, np.zeros(100))
    se_large = metric_std_error("regression", large, np.zeros(10_000))
    assert se_small is not None
    assert se_large is not None
    assert se_large < se_small / 5
    assert metric_std_error("regression", small, small) == 0.0
