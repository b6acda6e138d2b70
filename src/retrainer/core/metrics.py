"""The primary metric of a model (`model.metric`, the task's default otherwise), measured on what a model
said about some rows, and resampled for paired comparisons (pure).

A metric that is a function of row means (accuracy, RMSE, MAE, log loss; precision, recall and F1 through
their true/false positive and false negative counts) is resampled vectorised from its per-row parts; one
that is not (ROC AUC, a team's own function) is recomputed on each resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
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

from retrainer.config import ModelSettings, Task
from retrainer.core.plugins import PluginError, is_import_path, load_function, one_line
from retrainer.errors import UserError

# The built-in metrics a model may be judged on, per task, and whether higher is better.
BUILTIN_METRICS: dict[Task, dict[str, bool]] = {
    "classification": {"accuracy": True, "f1": True, "precision": True, "recall": True, "roc_auc": True,
                       "log_loss": False},
    "regression": {"rmse": False, "mae": False},
}
# The metrics measured from class probabilities rather than predicted classes.
PROBABILITY_METRICS = frozenset({"roc_auc", "log_loss"})
# log loss of a probability of 0: clipped as scikit-learn does, so one confident mistake is large, not infinite.
_EPSILON = float(np.finfo(np.float64).eps)


class MetricError(UserError):
    """`model.metric` names no metric of the task, or the team's metric function failed; one line says which."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name and which way is better; a team's own metric carries its function."""

    name: str
    higher_is_better: bool
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    # Binary classification: the class precision, recall, F1 and ROC AUC are of (None: the last of the sorted
    # classes, scikit-learn's 1 of 0/1).
    positive: str | None = None


@dataclass(frozen=True)
class Outputs:
    """What a model said about some rows: its predictions and, for a classifier, its class probabilities
    (columns in the order of `classes`)."""

    predictions: npt.NDArray[Any]
    probabilities: npt.NDArray[np.float64] | None = None
    classes: tuple[Any, ...] | None = None

    def take(self, rows: npt.NDArray[Any]) -> Outputs:
        """The outputs of the rows selected by `rows` (a mask or positions)."""
        return Outputs(self.predictions[rows], None if self.probabilities is None else self.probabilities[rows],
                       self.classes)


def primary_metric(task: Task) -> MetricSpec:
    """The task's default primary metric and its direction: accuracy for classification, RMSE for regression."""
    return MetricSpec("accuracy", True) if task == "classification" else MetricSpec("rmse", False)


def metric_spec(task: Task, name: str | None, higher_is_better: bool | None = None,
                positive: str | None = None) -> MetricSpec:
    """The metric of `model.metric` for the task: a built-in name (its direction known), a team's function
    `package.module:function(y_true, y_pred, y_proba)` (direction from `model.metric_higher_is_better`,
    which it needs), or the task's default; `positive` is `model.positive_class`. MetricError names what
    is wrong."""
    if positive is not None and task != "classification":
        raise MetricError("model.positive_class is for classification; this model is a regression")
    if name is None:
        default = primary_metric(task)
        return MetricSpec(default.name, default.higher_is_better, positive=positive)
    if is_import_path(name):
        if higher_is_better is None:
            raise MetricError(f"model.metric '{name}': say which way is better with model.metric_higher_is_better "
                              "(true for a score, false for a loss or a cost)")
        try:
            function = load_function(name, "model.metric")
        except PluginError as exc:
            raise MetricError(str(exc)) from None
        return MetricSpec(name, higher_is_better, function, positive)
    known = BUILTIN_METRICS[task]
    if name not in known:
        other = next(t for t in BUILTIN_METRICS if t != task)
        hint = f" ({name} is a {other} metric)" if name in BUILTIN_METRICS[other] else ""
        raise MetricError(f"model.metric '{name}' is not a {task} metric{hint}; choose one of: "
                          f"{', '.join(known)}, or name your own function as 'package.module:function'")
    if higher_is_better is not None and higher_is_better != known[name]:
        raise MetricError(f"model.metric_higher_is_better: {str(higher_is_better).lower()} contradicts '{name}', "
                          f"for which {'higher' if known[name] else 'lower'} is better (leave it out for built-ins)")
    return MetricSpec(name, known[name], positive=positive)


def configured_metric(settings: ModelSettings, task: Task) -> MetricSpec:
    """The metric `model.metric` names for the task (the task's default when it names none)."""
    return metric_spec(task, settings.metric, settings.metric_higher_is_better, settings.positive_class)


def _labels(y: npt.NDArray[Any], outputs: Outputs) -> list[Any]:
    """The labels a classification metric averages over: the model's classes, then any other label seen."""
    observed = set(y) | set(outputs.predictions)
    labels = list(outputs.classes) if outputs.classes is not None else sorted(observed, key=str)
    return labels + sorted(observed - set(labels), key=str)


def _proba_of(y: npt.NDArray[Any], outputs: Outputs) -> npt.NDArray[np.float64]:
    """Each row's probability of its true class (0 for a class the model does not know)."""
    if outputs.probabilities is None or outputs.classes is None:
        raise MetricError("this metric needs class probabilities, and the model gives none (no predict_proba)")
    position = {label: index for index, label in enumerate(outputs.classes)}
    columns = np.array([position.get(label, -1) for label in y])
    known = columns >= 0
    result = np.zeros(len(y), dtype=np.float64)
    result[known] = outputs.probabilities[np.flatnonzero(known), columns[known]]
    return result


def _parts(spec: MetricSpec, task: Task, y: npt.NDArray[Any], outputs: Outputs) -> npt.NDArray[np.float64] | None:
    """Per-row parts (rows × k) whose column means give the metric (`_from_means`); None when the metric is
    not a function of row means (ROC AUC, a team's function)."""
    if spec.function is not None or spec.name == "roc_auc":
        return None
    if task == "regression":
        error = np.asarray(y, np.float64) - np.asarray(outputs.predictions, np.float64)
        per_row: npt.NDArray[np.float64] = error ** 2 if spec.name == "rmse" else np.abs(error)
        return per_row[:, None]
    if spec.name in ("accuracy", "log_loss"):
        per_row = ((y != outputs.predictions).astype(np.float64) if spec.name == "accuracy"
                   else -np.log(np.clip(_proba_of(y, outputs), _EPSILON, 1.0)))
        return per_row[:, None]
    labels = _labels(y, outputs)
    # Binary: the positive class (by default the last of the model's two); otherwise every label, macro-averaged.
    judged = [_positive(spec, labels)] if len(labels) == 2 else labels
    counts = []
    for label in judged:
        truth, said = y == label, outputs.predictions == label
        counts += [truth & said, ~truth & said, truth & ~said]  # true positive, false positive, false negative
    return np.column_stack(counts).astype(np.float64)


def _positive(spec: MetricSpec, labels: Sequence[Any]) -> Any:
    """The positive class of a binary problem: `model.positive_class` when it is one of the two."""
    return spec.positive if spec.positive in labels else labels[-1]


def positive_label(spec: MetricSpec, y_true: npt.ArrayLike, outputs: Outputs) -> Any:
    """The class a binary metric (precision, recall, F1, ROC AUC) is of, for these labels and this model's
    outputs: `model.positive_class`, else the last of the model's classes."""
    return _positive(spec, _labels(np.asarray(y_true, dtype=object), outputs))


def _ratio(numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    result: npt.NDArray[np.float64] = np.divide(numerator, denominator, out=np.zeros_like(numerator),
                                                where=denominator > 0)
    return result


def _from_means(spec: MetricSpec, means: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The metric from the column means of its per-row parts (`_parts`), vectorised over leading axes."""
    if spec.name == "accuracy":
        return np.asarray(1.0 - means[..., 0], dtype=np.float64)
    if spec.name == "rmse":
        return np.asarray(np.sqrt(means[..., 0]), dtype=np.float64)
    if spec.name in ("mae", "log_loss"):
        return np.asarray(means[..., 0], dtype=np.float64)
    tp, fp, fn = means[..., 0::3], means[..., 1::3], means[..., 2::3]
    per_label = {"precision": lambda: _ratio(tp, tp + fp), "recall": lambda: _ratio(tp, tp + fn),
                 "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn)}[spec.name]()
    return np.asarray(per_label.mean(axis=-1), dtype=np.float64)


def measure(spec: MetricSpec, task: Task, y_true: npt.ArrayLike, outputs: Outputs) -> float:
    """The metric of `outputs` against `y_true`; NaN when it cannot be measured on these rows (ROC AUC of
    a single class). A team's function that raises, or returns no number, is a MetricError."""
    y = np.asarray(y_true, dtype=object if task == "classification" else np.float64)
    if len(y) == 0:
        return float("nan")
    if spec.function is not None:
        return _call_team_metric(spec, y, outputs)
    if spec.name == "roc_auc":
        return _roc_auc(spec, y, outputs)
    parts = _parts(spec, task, y, outputs)
    assert parts is not None
    return float(_from_means(spec, parts.mean(axis=0)))


def _roc_auc(spec: MetricSpec, y: npt.NDArray[Any], outputs: Outputs) -> float:
    if outputs.probabilities is None or outputs.classes is None:
        raise MetricError("model.metric 'roc_auc' needs class probabilities, and the model gives none (no predict_proba)")
    classes = list(outputs.classes)
    present = set(y)
    if len(present) < 2 or not present <= set(classes):
        return float("nan")
    if len(classes) == 2:
        positive = classes.index(_positive(spec, classes))
        return float(roc_auc_score(y == classes[positive], outputs.probabilities[:, positive]))
    if present != set(classes):
        return float("nan")
    return float(roc_auc_score(y, outputs.probabilities, multi_class="ovr", labels=classes))


def _call_team_metric(spec: MetricSpec, y: npt.NDArray[Any], outputs: Outputs) -> float:
    assert spec.function is not None
    try:
        value = spec.function(y, outputs.predictions, outputs.probabilities)
        return float(value)
    except Exception as exc:  # the team's code: one line naming it, recorded where the metric was needed
        raise MetricError(f"model.metric '{spec.name}' raised {one_line(exc)}") from None


def resampled_metric(spec: MetricSpec, task: Task, y_true: npt.ArrayLike,
                     outputs: Outputs) -> Callable[..., npt.NDArray[np.float64]]:
    """The statistic a bootstrap resamples for one model: given row positions (…, n), its metric on them."""
    y = np.asarray(y_true, dtype=object if task == "classification" else np.float64)
    parts = _parts(spec, task, y, outputs)
    if parts is not None:
        def vectorised(rows: npt.NDArray[np.intp], axis: int = -1) -> npt.NDArray[np.float64]:
            return _from_means(spec, parts[rows].mean(axis=-2))
        return vectorised
    if (spec.function is None and spec.name == "roc_auc" and outputs.classes is not None
            and outputs.probabilities is not None and len(outputs.classes) == 2):
        classes = list(outputs.classes)
        column = classes.index(_positive(spec, classes))
        positive, scores = y == classes[column], outputs.probabilities[:, column]

        def binary_auc(rows: npt.NDArray[np.intp], axis: int = -1) -> npt.NDArray[np.float64]:
            positions = np.asarray(rows)
            flat = positions.reshape(-1, positions.shape[-1])
            return _resampled_auc(positive, scores, flat).reshape(positions.shape[:-1])
        return binary_auc

    def recomputed(rows: npt.NDArray[np.intp], axis: int = -1) -> npt.NDArray[np.float64]:
        positions = np.asarray(rows)
        flat = positions.reshape(-1, positions.shape[-1])
        values = [measure(spec, task, y[r], outputs.take(r)) for r in flat]
        return np.asarray(values, dtype=np.float64).reshape(positions.shape[:-1])
    return recomputed


# Resamples weighed at once by the binary ROC AUC: bounds its (resamples × rows) arrays to ~40 MB each.
_AUC_CELLS = 5_000_000


def _resampled_auc(positive: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64],
                   rows: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """The binary ROC AUC of each resample (a row of `rows`: positions drawn with replacement), as scikit-learn
    computes it (the Mann–Whitney statistic, ties counting half), from each row's count in the resample:
    sorted once, then sums per resample instead of one `roc_auc_score` call each (11-36× faster on 3,000 and
    300 held-out rows, measured). NaN for a resample holding a single class."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_positive = scores[order], positive[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])  # groups of tied scores
    n = len(scores)
    result = np.empty(len(rows), dtype=np.float64)
    step = max(1, _AUC_CELLS // max(n, 1))
    for begin in range(0, len(rows), step):
        chunk = rows[begin:begin + step]
        offsets = (np.arange(len(chunk))[:, None] * n + chunk).ravel()
        counts = np.bincount(offsets, minlength=len(chunk) * n).reshape(len(chunk), n)[:, order].astype(np.float64)
        positives = np.add.reduceat(counts * sorted_positive, starts, axis=1)
        negatives = np.add.reduceat(counts * ~sorted_positive, starts, axis=1)
        below = np.cumsum(negatives, axis=1) - negatives
        pairs = positives.sum(axis=1) * negatives.sum(axis=1)
        wins = (positives * (below + 0.5 * negatives)).sum(axis=1)
        result[begin:begin + len(chunk)] = np.divide(wins, pairs, out=np.full(len(chunk), np.nan), where=pairs > 0)
    return result


def paired_improvement(spec: MetricSpec, task: Task, y_true: npt.ArrayLike, champion: Outputs,
                       challenger: Outputs) -> Callable[..., npt.NDArray[np.float64]]:
    """The statistic a paired bootstrap resamples: given row positions (…, n), the challenger's metric minus
    the champion's on those same rows, positive when the challenger is better."""
    sign = 1.0 if spec.higher_is_better else -1.0
    ours, theirs = resampled_metric(spec, task, y_true, challenger), resampled_metric(spec, task, y_true, champion)

    def improvement(rows: npt.NDArray[np.intp], axis: int = -1) -> npt.NDArray[np.float64]:
        return np.asarray(sign * (ours(rows) - theirs(rows)), dtype=np.float64)
    return improvement


def as_outputs(task: Task, value: Outputs | npt.ArrayLike) -> Outputs:
    """Outputs as given, or predictions alone (classes as objects, quantities as floats)."""
    if isinstance(value, Outputs):
        return value
    return Outputs(np.asarray(value, dtype=object if task == "classification" else np.float64))


def score(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """The task's default primary metric: accuracy for classification, RMSE for regression."""
    return measure(primary_metric(task), task, y_true, as_outputs(task, y_pred))


def all_metrics(
    task: Task,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    probabilities: npt.NDArray[np.float64] | None = None,
    classes: Sequence[Any] | None = None,
    primary: MetricSpec | None = None,
) -> dict[str, float]:
    """Every metric a person reads for the task, the `primary` one (`model.metric`) included when it can be
    measured on these rows.

    Classification: accuracy, F1, precision, recall (the positive class is the last of the
    model's sorted classes when there are two; macro averages otherwise) and ROC AUC when the
    model gives probabilities and both classes occur. Regression: RMSE and MAE.
    """
    if task == "regression":
        true, pred = np.asarray(y_true, float), np.asarray(y_pred, float)
        return _with_primary({"rmse": float(np.sqrt(mean_squared_error(true, pred))),
                              "mae": float(mean_absolute_error(true, pred))}, primary, task, true, Outputs(pred))
    true, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    observed = set(true) | set(pred)
    labels = list(classes) if classes is not None else sorted(observed, key=str)
    # Labels the model never saw (a batch of a new class) make it a multiclass problem here.
    binary = len(labels) == 2 and observed <= set(labels)
    if not observed <= set(labels):
        labels = labels + sorted(observed - set(labels), key=str)
    positive = labels[-1] if primary is None else _positive(primary, labels)
    # The same metrics on each label's position in `labels`: scikit-learn checks Python-object labels slowly
    # (6.3 s for these four on 1M rows, 0.3 s on the codes, the same figures).
    true_codes, pred_codes = _codes(true, labels), _codes(pred, labels)
    positions = list(range(len(labels)))
    averaging: dict[str, Any] = ({"average": "binary", "pos_label": labels.index(positive)} if binary
                                 else {"average": "macro"})
    result = {
        "accuracy": float(accuracy_score(true_codes, pred_codes)),
        "f1": float(f1_score(true_codes, pred_codes, labels=positions, zero_division=0, **averaging)),
        "precision": float(precision_score(true_codes, pred_codes, labels=positions, zero_division=0, **averaging)),
        "recall": float(recall_score(true_codes, pred_codes, labels=positions, zero_division=0, **averaging)),
    }
    present = set(true)
    if probabilities is not None and classes is not None and len(present) >= 2 and present <= set(classes):
        # ROC AUC is undefined when a batch holds one class; then it is left out, not made up.
        if binary:
            column = list(classes).index(positive) if positive in list(classes) else -1
            result["roc_auc"] = float(roc_auc_score(true == list(classes)[column], probabilities[:, column]))
        elif present == set(classes):
            result["roc_auc"] = float(roc_auc_score(true, probabilities, multi_class="ovr", labels=list(classes)))
    outputs = Outputs(pred, probabilities, None if classes is None else tuple(classes))
    return _with_primary(result, primary, task, true, outputs)


def _codes(values: npt.NDArray[Any], labels: list[Any]) -> npt.NDArray[np.int64]:
    """Each value's position in `labels` (which holds every value)."""
    codes: npt.NDArray[np.int64] = pd.Categorical(values, categories=labels).codes.astype(np.int64)
    return codes


def _with_primary(result: dict[str, float], primary: MetricSpec | None, task: Task, y: npt.NDArray[Any],
                  outputs: Outputs) -> dict[str, float]:
    if primary is not None and primary.name not in result:
        if primary.name in PROBABILITY_METRICS and outputs.probabilities is None:
            return result
        value = measure(primary, task, y, outputs)
        if np.isfinite(value):
            result[primary.name] = value
    return result


def row_losses(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-row loss whose aggregate gives the task's default metric: 0/1 error, or squared error."""
    y = np.asarray(y_true, dtype=object if task == "classification" else np.float64)
    parts = _parts(primary_metric(task), task, y, as_outputs(task, y_pred))
    assert parts is not None
    return parts[:, 0]


def metric_from_losses(task: Task, losses: npt.NDArray[np.float64], axis: int = -1) -> npt.NDArray[np.float64]:
    """Aggregate per-row losses back to the task's default metric (vectorised over resamples)."""
    mean = np.asarray(np.mean(losses, axis=axis), dtype=np.float64)
    return _from_means(primary_metric(task), mean[..., None])


def metric_std_error(task: Task, y_true: npt.ArrayLike, y_pred: npt.ArrayLike | Outputs,
                     spec: MetricSpec | None = None, seed: int = 0) -> float | None:
    """The standard error of the metric measured on these rows: how far one batch's number may wander
    from the model's true performance by chance (accuracy: that of a proportion; RMSE: the delta method
    on the mean squared error; any other metric: scipy's bootstrap estimate). None with fewer than two
    rows, or when the metric cannot be measured on resamples of them."""
    spec = spec or primary_metric(task)
    outputs = as_outputs(task, y_pred)
    if len(outputs.predictions) < 2:
        return None
    if spec.function is not None or spec.name != primary_metric(task).name:
        return _bootstrap_std_error(spec, task, y_true, outputs, seed)
    losses = row_losses(task, y_true, outputs.predictions)
    mean_error = float(np.std(losses, ddof=1) / np.sqrt(len(losses)))
    if task == "classification":
        return mean_error
    mse = float(np.mean(losses))
    return 0.0 if mse == 0 else mean_error / (2 * np.sqrt(mse))


# Enough resamples for a standard error (not a tail percentile): 200 put it within ~5 % of itself.
_STD_ERROR_RESAMPLES = 200


def _bootstrap_std_error(spec: MetricSpec, task: Task, y_true: npt.ArrayLike, outputs: Outputs,
                         seed: int) -> float | None:
    y = np.asarray(y_true, dtype=object if task == "classification" else np.float64)
    statistic = resampled_metric(spec, task, y, outputs)
    result = stats.bootstrap((np.arange(len(y)),), statistic, vectorized=True, n_resamples=_STD_ERROR_RESAMPLES,
                             method="percentile", rng=np.random.default_rng(seed))
    error = float(result.standard_error)
    return error if np.isfinite(error) else None


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
