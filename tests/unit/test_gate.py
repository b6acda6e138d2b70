"""The champion/challenger gate (retrainer.evaluation.gate): pure, over predictions on the same holdout."""

from __future__ import annotations

import numpy as np
import pytest

from retrainer.config import PromotionSettings
from retrainer.evaluation import gate
from retrainer.metrics import score

SETTINGS = PromotionSettings()


def _labels(n: int) -> np.ndarray:
    return np.array(["yes", "no"] * (n // 2), dtype=object)


def _flip(labels: np.ndarray, rows: range | list[int]) -> np.ndarray:
    flipped = labels.copy()
    for i in rows:
        flipped[i] = "no" if labels[i] == "yes" else "yes"
    return flipped


def _check(verdict, prefix: str):  # type: ignore[no-untyped-def]
    return next(c for c in verdict.checks if c.name.startswith(prefix))


def test_clearly_better_challenger_passes_with_an_interval_above_zero() -> None:
    """A challenger that fixes most of the champion's errors on 200 rows passes every check."""
    y = _labels(200)
    champion = _flip(y, range(40))  # 80 % accuracy
    challenger = _flip(y, range(5))  # 97.5 %
    verdict = gate("classification", y, champion, challenger, SETTINGS)
    assert verdict.passed is True
    assert verdict.metric_name == "accuracy"
    assert verdict.champion_metric == pytest.approx(0.8)
    assert verdict.challenger_metric == pytest.approx(0.975)
    assert verdict.improvement == pytest.approx(0.175)
    assert 0 < verdict.ci_low <= verdict.improvement <= verdict.ci_high
    assert verdict.holdout_rows == 200
    assert [c.passed for c in verdict.checks] == [True, True, True, True]


def test_identical_models_fail_for_lack_of_improvement() -> None:
    """A challenger predicting exactly what the champion predicts is not promoted."""
    y = _labels(100)
    predictions = _flip(y, range(10))
    verdict = gate("classification", y, predictions, predictions.copy(), SETTINGS)
    assert verdict.passed is False
    assert verdict.improvement == 0.0
    assert verdict.churn == 0.0
    assert _check(verdict, "accuracy improvement").passed is False
    assert _check(verdict, "95% interval").passed is False


def test_slightly_better_challenger_on_a_tiny_holdout_fails_the_interval_check() -> None:
    """Fixing one row out of ten is an improvement, but ten rows are too few for an interval, so the gate fails."""
    y = _labels(10)
    champion = _flip(y, [0])
    verdict = gate("classification", y, champion, y, SETTINGS)
    assert verdict.improvement == pytest.approx(0.1)
    assert _check(verdict, "accuracy improvement").passed is True
    assert _check(verdict, "holdout size").passed is False
    assert _check(verdict, "95% interval").passed is False
    assert verdict.passed is False


def test_slightly_better_challenger_on_a_small_holdout_has_an_interval_reaching_zero() -> None:
    """Fixing one row out of forty is an improvement whose bootstrap interval still reaches zero, so the gate fails."""
    y = _labels(40)
    champion = _flip(y, [0])
    verdict = gate("classification", y, champion, y, SETTINGS)
    assert verdict.improvement == pytest.approx(0.025)
    assert _check(verdict, "holdout size").passed is True
    assert verdict.ci_low <= 0
    assert _check(verdict, "95% interval").passed is False
    assert verdict.passed is False


def test_margin_larger_than_the_improvement_fails() -> None:
    """A real, significant improvement still fails when it is smaller than the configured margin."""
    y = _labels(200)
    champion = _flip(y, range(40))
    challenger = _flip(y, range(5))
    verdict = gate("classification", y, champion, challenger, PromotionSettings(margin=0.2))
    assert verdict.passed is False
    assert _check(verdict, "accuracy improvement").passed is False
    assert _check(verdict, "accuracy improvement").detail == "+0.1750 (margin 0.2)"
    assert _check(verdict, "95% interval").passed is True


def test_nan_in_a_regression_challenger_fails_the_finite_check() -> None:
    """A regression challenger that outputs NaN is never promoted, however good its other rows are."""
    y = np.arange(50, dtype=float)
    champion = y + 3.0
    challenger = y.copy()
    challenger[7] = np.nan
    verdict = gate("regression", y, champion, challenger, SETTINGS)
    assert verdict.passed is False
    assert _check(verdict, "finite outputs").passed is False


def test_inf_in_a_regression_challenger_fails_the_finite_check() -> None:
    """A regression challenger that outputs infinity is never promoted."""
    y = np.arange(50, dtype=float)
    challenger = y.copy()
    challenger[0] = np.inf
    verdict = gate("regression", y, y + 3.0, challenger, SETTINGS)
    assert verdict.passed is False
    assert _check(verdict, "finite outputs").passed is False


def test_missing_class_in_a_classification_challenger_fails_the_finite_check() -> None:
    """A classifier that returns None for a row is never promoted."""
    y = _labels(100)
    challenger = y.copy()
    challenger[3] = None
    verdict = gate("classification", y, _flip(y, range(30)), challenger, SETTINGS)
    assert verdict.passed is False
    assert _check(verdict, "finite outputs").passed is False


def test_nan_challenger_verdict_still_reports_the_champions_real_metric() -> None:
    """When the challenger outputs NaN, the verdict still shows the champion's true RMSE on the holdout."""
    y = np.arange(50, dtype=float)
    challenger = y.copy()
    challenger[7] = np.nan
    verdict = gate("regression", y, y + 3.0, challenger, SETTINGS)
    assert verdict.champion_metric == pytest.approx(3.0)


def test_regression_improvement_is_positive_when_the_challenger_has_lower_rmse() -> None:
    """For RMSE, a challenger with the lower error shows a positive improvement and passes."""
    y = np.linspace(0.0, 100.0, 60)
    signs = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    champion = y + 2.0 * signs  # RMSE 2
    challenger = y + 0.5 * signs  # RMSE 0.5
    verdict = gate("regression", y, champion, challenger, SETTINGS)
    assert verdict.metric_name == "rmse"
    assert verdict.champion_metric == pytest.approx(2.0)
    assert verdict.challenger_metric == pytest.approx(0.5)
    assert verdict.improvement == pytest.approx(1.5)
    assert verdict.ci_low > 0
    assert verdict.passed is True


def test_regression_improvement_is_negative_when_the_challenger_has_higher_rmse() -> None:
    """For RMSE, a challenger with the higher error shows a negative improvement and fails."""
    y = np.linspace(0.0, 100.0, 60)
    signs = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    verdict = gate("regression", y, y + 0.5 * signs, y + 2.0 * signs, SETTINGS)
    assert verdict.improvement == pytest.approx(-1.5)
    assert verdict.ci_high < 0
    assert verdict.passed is False


def test_churn_is_the_share_of_flipped_predictions() -> None:
    """Churn is the fraction of rows on which champion and challenger predict different classes."""
    y = _labels(100)
    champion = _flip(y, range(20))  # wrong on rows 0-19
    challenger = _flip(y, range(10, 25))  # wrong on rows 10-24
    verdict = gate("classification", y, champion, challenger, SETTINGS)
    # they disagree on rows 0-9 and 20-24
    assert verdict.churn == pytest.approx(0.15)


def test_regression_churn_counts_predictions_that_move_by_more_than_a_tenth_of_the_target_spread() -> None:
    """For regression, churn counts rows whose prediction moved more than 0.1 standard deviations of y."""
    y = np.arange(100, dtype=float)  # std ≈ 28.87, so the cut is ≈ 2.89
    champion = y.copy()
    challenger = y.copy()
    challenger[:30] += 5.0
    challenger[30:40] += 1.0
    verdict = gate("regression", y, champion, challenger, SETTINGS)
    assert verdict.churn == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("y", "champion", "challenger"),
    [
        (["a", "b", "a"], ["a", "b"], ["a", "b", "a"]),
        (["a", "b", "a"], ["a", "b", "a"], ["a", "b"]),
        ([], [], []),
    ],
)
def test_mismatched_or_empty_holdouts_raise_value_error(y: list[str], champion: list[str],
                                                        challenger: list[str]) -> None:
    """The gate refuses holdouts whose lengths differ between labels and models, or that are empty."""
    with pytest.raises(ValueError, match="same non-empty held-out rows"):
        gate("classification", y, champion, challenger, SETTINGS)


def test_same_seed_gives_the_same_interval() -> None:
    """The bootstrap interval is reproducible for a given seed."""
    y = _labels(60)
    champion = _flip(y, range(12))
    challenger = _flip(y, range(6))
    first = gate("classification", y, champion, challenger, SETTINGS, seed=3)
    second = gate("classification", y, champion, challenger, SETTINGS, seed=3)
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)


def test_gate_metrics_agree_with_score() -> None:
    """The metrics a verdict reports are the same as the task's primary metric computed directly."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=80)
    champion = y + rng.normal(scale=1.0, size=80)
    challenger = y + rng.normal(scale=0.3, size=80)
    verdict = gate("regression", y, champion, challenger, SETTINGS)
    assert verdict.champion_metric == pytest.approx(score("regression", y, champion))
    assert verdict.challenger_metric == pytest.approx(score("regression", y, challenger))


def test_summary_names_the_outcome_and_every_check() -> None:
    """The verdict's summary states pass/fail, the holdout size and one line per check."""
    y = _labels(10)
    verdict = gate("classification", y, y, y, SETTINGS)
    lines = verdict.summary().splitlines()
    assert lines[0] == "gate FAILED on 10 held-out rows: accuracy champion 1.0000, challenger 1.0000"
    assert len(lines) == 1 + len(verdict.checks)
    assert verdict.to_dict()["checks"][0]["name"] == "finite outputs"


def test_single_row_holdout_cannot_promote() -> None:
    """A challenger that is right on the only held-out row is not promoted on that one number."""
    verdict = gate("classification", ["yes"], ["no"], ["yes"], SETTINGS)
    assert verdict.passed is False
