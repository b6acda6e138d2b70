"""The primary metric of a task, and its per-row form for paired comparisons (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, mean_squared_error

from retrainer.config import Task


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool


def primary_metric(task: Task) -> MetricSpec:
    return MetricSpec("accuracy", True) if task == "classification" else MetricSpec("rmse", False)


def score(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """The task's primary metric: accuracy for classification, RMSE for regression."""
    if task == "classification":
        return float(accuracy_score(np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)))
    return float(np.sqrt(mean_squared_error(np.asarray(y_true, float), np.asarray(y_pred, float))))


def row_losses(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-row loss whose aggregate gives the metric: 0/1 error, or squared error."""
    if task == "classification":
        return (np.asarray(y_true, dtype=object) != np.asarray(y_pred, dtype=object)).astype(float)
    return (np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2


def metric_from_losses(task: Task, losses: npt.NDArray[np.float64], axis: int = -1) -> npt.NDArray[np.float64]:
    """Aggregate per-row losses back to the metric (vectorised over resamples)."""
    mean = np.mean(losses, axis=axis)
    return 1.0 - mean if task == "classification" else np.sqrt(mean)


def relative_drop(spec: MetricSpec, reference: float, current: float) -> float:
    """How much worse `current` is than `reference`, as a fraction of `reference` (≤ 0: not worse)."""
    change = (reference - current) if spec.higher_is_better else (current - reference)
    if reference == 0:
        return float("inf") if change > 0 else 0.0
    return change / abs(reference)
