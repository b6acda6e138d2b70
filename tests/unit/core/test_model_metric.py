"""`model.metric`: the primary metric a team chooses, measured as scikit-learn does, resampled for the gate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, mean_absolute_error, precision_score, recall_score, roc_auc_score

from retrainer.config import PromotionSettings
from retrainer.core.gate import gate
from retrainer.core.metrics import (
    MetricError,
    MetricSpec,
    Outputs,
    all_metrics,
    measure,
    metric_spec,
    metric_std_error,
    paired_improvement,
)

RNG = np.random.default_rng(7)


def _binary(rows: int = 400, rare: float = 0.2) -> tuple[np.ndarray, Outputs]:
    y = np.where(RNG.random(rows) < rare, "fail", "ok").astype(object)
    proba_fail = np.clip(np.where(y == "fail", 0.65, 0.3) + RNG.normal(0, 0.2, rows), 0.01, 0.99)
    predictions = np.where(proba_fail > 0.5, "fail", "ok").astype(object)
    return y, Outputs(predictions, np.column_stack([proba_fail, 1 - proba_fail]), ("fail", "ok"))


def _multiclass(rows: int = 300) -> tuple[np.ndarray, Outputs]:
    classes = ("a", "b", "c")
    y = RNG.choice(classes, rows).astype(object)
    noise = RNG.dirichlet([1, 1, 1], rows)
    truth = np.array([[label == c for c in classes] for label in y], dtype=float)
    proba = 0.5 * truth + 0.5 * noise
    return y, Outputs(np.array(classes, dtype=object)[proba.argmax(axis=1)], proba, classes)


@pytest.mark.parametrize("name", ["f1", "precision", "recall"])
@pytest.mark.parametrize(("case", "averaging"), [("binary", {"pos_label": "ok"}), ("multiclass", {"average": "macro"})])
def test_counting_metrics_are_scikit_learns(name: str, case: str, averaging: dict[str, str]) -> None:
    """Binary: of the last class; more classes: scikit-learn's macro averages."""
    y, outputs = _binary() if case == "binary" else _multiclass()
    expected = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[name](
        y, outputs.predictions, zero_division=0, **averaging)
    assert measure(metric_spec("classification", name), "classification", y, outputs) == pytest.approx(expected)


def test_probability_metrics_are_scikit_learns() -> None:
    y, outputs = _binary()
    assert outputs.probabilities is not None
    assert measure(metric_spec("classification", "roc_auc"), "classification", y, outputs) == pytest.approx(
        roc_auc_score(y == "ok", outputs.probabilities[:, 1]))
    assert measure(metric_spec("classification", "log_loss"), "classification", y, outputs) == pytest.approx(
        log_loss(y, outputs.probabilities, labels=["fail", "ok"]))


def test_mae_is_scikit_learns_and_lower_is_better() -> None:
    y, predicted = RNG.normal(size=200), RNG.normal(size=200)
    spec = metric_spec("regression", "mae")
    assert not spec.higher_is_better
    assert measure(spec, "regression", y, Outputs(predicted)) == pytest.approx(mean_absolute_error(y, predicted))


def test_the_positive_class_is_the_configured_one() -> None:
    y, outputs = _binary()
    spec = metric_spec("classification", "recall", positive="fail")
    assert measure(spec, "classification", y, outputs) == pytest.approx(
        recall_score(y, outputs.predictions, pos_label="fail"))
    assert outputs.probabilities is not None
    assert measure(metric_spec("classification", "roc_auc", positive="fail"), "classification", y, outputs) == \
        pytest.approx(roc_auc_score(y == "fail", outputs.probabilities[:, 0]))
    metrics = all_metrics("classification", y, outputs.predictions, outputs.probabilities, outputs.classes, primary=spec)
    assert metrics["recall"] == pytest.approx(recall_score(y, outputs.predictions, pos_label="fail"))
    with pytest.raises(MetricError, match="positive_class is for classification"):
        metric_spec("regression", None, positive="fail")


def test_the_primary_metric_joins_the_metrics_a_person_reads() -> None:
    y, outputs = _binary()
    metrics = all_metrics("classification", y, outputs.predictions, outputs.probabilities, outputs.classes,
                          primary=metric_spec("classification", "log_loss"))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, outputs.probabilities, labels=["fail", "ok"]))
    assert {"accuracy", "f1", "roc_auc"} <= set(metrics)


def test_the_vectorised_resample_gives_what_recomputing_gives() -> None:
    """F1 is resampled from its per-row counts; on any resample it is what scikit-learn computes there."""
    y, champion = _binary()
    _, challenger = _binary()
    statistic = paired_improvement(metric_spec("classification", "f1"), "classification", y, champion, challenger)
    rows = RNG.integers(0, len(y), (5, len(y)))
    for resample, value in zip(rows, statistic(rows), strict=True):
        expected = (f1_score(y[resample], challenger.predictions[resample], pos_label="ok")
                    - f1_score(y[resample], champion.predictions[resample], pos_label="ok"))
        assert value == pytest.approx(expected)


def test_a_bootstrap_standard_error_for_metrics_without_a_formula() -> None:
    y, outputs = _binary()
    error = metric_std_error("classification", y, outputs, metric_spec("classification", "roc_auc"))
    assert error is not None
    assert 0.005 < error < 0.1


def test_a_metric_of_the_other_task_is_named_as_such() -> None:
    with pytest.raises(MetricError, match="'rmse' is not a classification metric \\(rmse is a regression metric\\)"):
        metric_spec("classification", "rmse")
    with pytest.raises(MetricError, match="choose one of: accuracy, f1, precision, recall, roc_auc, log_loss"):
        metric_spec("classification", "auc")


def test_a_team_metric_needs_its_direction_and_a_built_in_keeps_its_own() -> None:
    with pytest.raises(MetricError, match="metric_higher_is_better"):
        metric_spec("classification", "numpy:mean")
    with pytest.raises(MetricError, match="contradicts 'log_loss'"):
        metric_spec("classification", "log_loss", higher_is_better=True)
    assert metric_spec("classification", "numpy:mean", higher_is_better=False).function is np.mean


def _cost_of_errors(y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None) -> float:
    """A missed failure costs 10, a false alarm 1, per row."""
    return float(np.mean(10 * ((y_true == "fail") & (y_pred != "fail")) + 1 * ((y_true != "fail") & (y_pred == "fail"))))


def _raises(y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None) -> float:
    raise ZeroDivisionError("no failures\nsecond line")


def test_a_team_function_is_called_and_its_failure_is_one_line() -> None:
    y, outputs = _binary()
    spec = MetricSpec("team.metrics:cost", False, _cost_of_errors)
    assert measure(spec, "classification", y, outputs) == pytest.approx(_cost_of_errors(y, outputs.predictions, None))
    with pytest.raises(MetricError, match=r"^model.metric 'team.metrics:raises' raised ZeroDivisionError: no failures$"):
        measure(MetricSpec("team.metrics:raises", True, _raises), "classification", y, outputs)


def _rare_class_case(rows: int = 1000) -> tuple[np.ndarray, Outputs, Outputs]:
    """The champion never flags a failure; the challenger finds most failures at the cost of false alarms:
    the same accuracy, a far better recall of the rare class."""
    y = np.where(np.arange(rows) % 10 == 0, "fail", "ok").astype(object)
    champion = np.full(rows, "ok", dtype=object)
    challenger = champion.copy()
    failures, healthy = np.flatnonzero(y == "fail"), np.flatnonzero(y == "ok")
    challenger[failures[: int(0.8 * len(failures))]] = "fail"
    challenger[healthy[: int(0.8 * len(failures))]] = "fail"
    return y, Outputs(champion), Outputs(challenger)


def test_the_gate_judges_the_configured_metric() -> None:
    y, champion, challenger = _rare_class_case()
    settings = PromotionSettings(max_churn=None)
    on_accuracy = gate("classification", y, champion, challenger, settings)
    on_f1 = gate("classification", y, champion, challenger, settings,
                 metric=metric_spec("classification", "f1", positive="fail"))
    assert not on_accuracy.passed
    assert on_accuracy.metric_name == "accuracy"
    assert on_f1.passed, on_f1.summary()
    assert on_f1.metric_name == "f1"
    assert on_f1.ci_low > 0
    assert "f1 improvement ≥ margin" in on_f1.summary()


def test_the_gate_judges_a_team_cost_where_lower_is_better() -> None:
    y, champion, challenger = _rare_class_case()
    cost = MetricSpec("team.metrics:cost", False, _cost_of_errors)
    verdict = gate("classification", y, champion, challenger, PromotionSettings(max_churn=None), metric=cost)
    assert verdict.passed, verdict.summary()
    assert verdict.challenger_metric < verdict.champion_metric
    assert verdict.improvement > 0
    # Reversed roles, the cost rises: refused.
    assert not gate("classification", y, challenger, champion, PromotionSettings(max_churn=None), metric=cost).passed


def test_a_metric_the_holdout_cannot_give_refuses_with_that_reason() -> None:
    y = np.full(200, "ok", dtype=object)
    said = Outputs(y.copy(), np.tile([0.2, 0.8], (200, 1)), ("fail", "ok"))
    verdict = gate("classification", y, said, said, PromotionSettings(),
                   metric=metric_spec("classification", "roc_auc"))
    assert not verdict.passed
    assert "roc_auc cannot be computed on these held-out rows" in verdict.summary()


def test_the_resampled_roc_auc_is_scikit_learns_on_every_resample() -> None:
    """ROC AUC is resampled from row counts (ties counting half), not by one scikit-learn call per resample;
    on any resample it is what scikit-learn computes there."""
    from retrainer.core.metrics import resampled_metric

    y, outputs = _binary(300)
    assert outputs.probabilities is not None
    rounded = Outputs(outputs.predictions, np.round(outputs.probabilities, 1), outputs.classes)  # many ties
    spec = metric_spec("classification", "roc_auc", positive="fail")
    rows = RNG.integers(0, len(y), (6, len(y)))
    for resample, value in zip(rows, resampled_metric(spec, "classification", y, rounded)(rows), strict=True):
        assert value == pytest.approx(roc_auc_score(y[resample] == "fail", rounded.probabilities[resample, 0]))
