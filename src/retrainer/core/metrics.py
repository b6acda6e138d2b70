"""The primary metric of a task, and its per-row form for paired comparisons (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from retrainer.config import Task


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name and which way is better."""

    name: str
    higher_is_better: bool


def primary_metric(task: Task) -> MetricSpec:
    """The task's primary metric and its direction: accuracy for classification, RMSE for regression."""
    return MetricSpec("accuracy", True) if task == "classification" else MetricSpec("rmse", False)


def score(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """The task's primary metric: accuracy for classification, RMSE for regression."""
    if task == "classification":
        return float(accuracy_score(np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)))
    return float(np.sqrt(mean_squared_error(np.asarray(y_true, float), np.asarray(y_pred, float))))


def all_metrics(
    task: Task,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    probabilities: npt.NDArray[np.float64] | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Every metric a person reads for the task, beside the primary one.

    Classification: accuracy, F1, precision, recall (the positive class is the last of the
    model's sorted classes when there are two; macro averages otherwise) and ROC AUC when the
    model gives probabilities and both classes occur. Regression: RMSE and MAE.
    """
    if task == "regression":
        true, pred = np.asarray(y_true, float), np.asarray(y_pred, float)
        return {"rmse": float(np.sqrt(mean_squared_error(true, pred))), "mae": float(mean_absolute_error(true, pred))}
    true, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    observed = set(true) | set(pred)
    labels = list(classes) if classes is not None else sorted(observed, key=str)
    # Labels the model never saw (a batch of a new class) make it a multiclass problem here.
    binary = len(labels) == 2 and observed <= set(labels)
    if not observed <= set(labels):
        labels = labels + sorted(observed - set(labels), key=str)
    averaging: dict[str, Any] = {"average": "binary", "pos_label": labels[-1]} if binary else {"average": "macro"}
    result = {
        "accuracy": float(accuracy_score(true, pred)),
        "f1": float(f1_score(true, pred, labels=labels, zero_division=0, **averaging)),
        "precision": float(precision_score(true, pred, labels=labels, zero_division=0, **averaging)),
        "recall": float(recall_score(true, pred, labels=labels, zero_division=0, **averaging)),
    }
    present = set(true)
    if probabilities is not None and classes is not None and len(present) >= 2 and present <= set(classes):
        # ROC AUC is undefined when a batch holds one class; then it is left out, not made up.
        if binary:
            result["roc_auc"] = float(roc_auc_score(true == labels[-1], probabilities[:, -1]))
        elif present == set(classes):
            result["roc_auc"] = float(roc_auc_score(true, probabilities, multi_class="ovr", labels=list(classes)))
    return result


def row_losses(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-row loss whose aggregate gives the metric: 0/1 error, or squared error."""
    if task == "classification":
        wrong: npt.NDArray[np.float64] = (np.asarray(y_true, dtype=object) != np.asarray(y_pred, dtype=object)
                                          ).astype(np.float64)
        return wrong
    squared: npt.NDArray[np.float64] = (np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2
    return squared


def metric_from_losses(task: Task, losses: npt.NDArray[np.float64], axis: int = -1) -> npt.NDArray[np.float64]:
    """Aggregate per-row losses back to the metric (vectorised over resamples)."""
    mean: npt.NDArray[np.float64] = np.asarray(np.mean(losses, axis=axis), dtype=np.float64)
    return 1.0 - mean if task == "classification" else np.sqrt(mean)


def metric_std_error(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float | None:
    """The standard error of the primary metric measured on these rows: how far one batch's number may
    wander from the model's true performance by chance (accuracy: that of a proportion; RMSE: the
    delta method on the mean squared error). None with fewer than two rows."""
    losses = row_losses(task, y_true, y_pred)
    if len(losses) < 2:
        return None
    mean_error = float(np.std(losses, ddof=1) / np.sqrt(len(losses)))
    if task == "classification":
        return mean_error
    mse = float(np.mean(losses))
    return 0.0 if mse == 0 else mean_error / (2 * np.sqrt(mse))


def relative_drop(spec: MetricSpec, reference: float, current: float) -> float:
    """How much worse `current` is than `reference`, as a fraction of `reference` (≤ 0: not worse)."""
    change = (reference - current) if spec.higher_is_better else (current - reference)
    if reference == 0:
        return float("inf") if change > 0 else 0.0
    return change / abs(reference)


def combined_std_error(*errors: float | None) -> float | None:
    """The standard error of a difference of independent measurements (a batch's metric against the
    champion's own validation metric, itself measured on a few hundred rows): None when none is known."""
    known = [error for error in errors if error is not None]
    return float(np.sqrt(sum(error * error for error in known))) if known else None


def noise_margin(std_error: float, confidence: float) -> float:
    """How far one batch's metric may fall short of the model's true one by chance, at `confidence` (one-sided)."""
    return float(stats.norm.ppf(confidence)) * std_error


def optimistic(metric: MetricSpec, value: float, std_error: float | None, confidence: float) -> float:
    """The best the champion's metric may really be, at `confidence` (one-sided), given the noise."""
    if std_error is None:
        return value
    margin = noise_margin(std_error, confidence)
    return value + margin if metric.higher_is_better else value - margin


def pessimistic(metric: MetricSpec, value: float, std_error: float | None, confidence: float) -> float:
    """The worst the champion's metric may really be, at `confidence` (one-sided): the optimistic end's mirror."""
    return 2 * value - optimistic(metric, value, std_error, confidence)
