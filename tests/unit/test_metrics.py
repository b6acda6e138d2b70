"""Metrics (retrainer.metrics): the primary metric, its per-row losses, and relative drops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retrainer.metrics import MetricSpec, metric_from_losses, primary_metric, relative_drop, row_losses, score

ACCURACY = primary_metric("classification")
RMSE = primary_metric("regression")


def test_primary_metrics_are_accuracy_and_rmse() -> None:
    """Classification is judged on accuracy (higher better), regression on RMSE (lower better)."""
    assert ACCURACY == MetricSpec("accuracy", True)
    assert RMSE == MetricSpec("rmse", False)


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
