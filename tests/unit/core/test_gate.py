"""The champion/challenger gate (retrainer.core.gate.gate): pure, over predictions on the same holdout."""

from __future__ import annotations

import re

import numpy as np
import pytest

from retrainer.config import PromotionSettings
from retrainer.core.gate import gate
from retrainer.core.metrics import score

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
    # The interval is above zero but not above the margin: not significantly a 0.2 improvement.
    assert _check(verdict, "95% interval").name == "95% interval above zero and the margin"
    assert _check(verdict, "95% interval").passed is False


def test_an_improvement_over_the_margin_must_be_significant_over_the_margin() -> None:
    """Improvement ≥ margin on average is not enough when the interval's low end is under the margin."""
    y = _labels(200)
    champion = _flip(y, range(40))  # 80 %
    challenger = _flip(y, range(30))  # 85 %: +0.05, interval roughly [+0.02, +0.08]
    verdict = gate("classification", y, champion, challenger, PromotionSettings(margin=0.04))
    assert _check(verdict, "accuracy improvement").passed is True
    assert 0 < verdict.ci_low < 0.04
    assert _check(verdict, "95% interval").passed is False
    assert verdict.passed is False


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
    """The verdict's summary states pass/fail, the holdout size and the checks that failed, then one line per
    check marked ✓ or ✗ (marks that read the same in a terminal and in the MLflow UI's markdown)."""
    y = _labels(10)
    verdict = gate("classification", y, y, y, SETTINGS)
    lines = verdict.summary().splitlines()
    assert lines[0] == ("gate FAILED on 10 held-out rows: accuracy champion 1.0000, challenger 1.0000; failed: "
                        "holdout size, accuracy improvement ≥ margin, 95% interval above zero")
    assert len(lines) == 1 + len(verdict.checks)
    assert lines[1] == "- ✓ finite outputs: no NaN/inf in the challenger's predictions"
    assert lines[2].startswith("- ✗ holdout size: 10 rows")
    assert verdict.to_dict()["checks"][0]["name"] == "finite outputs"


def test_single_row_holdout_cannot_promote() -> None:
    """A challenger that is right on the only held-out row is not promoted on that one number."""
    verdict = gate("classification", ["yes"], ["no"], ["yes"], SETTINGS)
    assert verdict.passed is False


# --- slices, churn, baseline and serving costs -------------------------------------------------

from retrainer.core.gate import ModelCosts  # noqa: E402  (appended section)

_DEFAULT_CHECKS = ["finite outputs", "holdout size", "accuracy improvement ≥ margin", "95% interval above zero"]


def _regional() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200 rows, 100 'north' then 100 'south': the challenger fixes all 40 south errors, breaks 10 north rows."""
    y = _labels(200)
    region = np.array(["north"] * 100 + ["south"] * 100, dtype=object)
    champion = _flip(y, range(100, 140))  # north 100 %, south 60 %, overall 80 %
    challenger = _flip(y, range(10))  # north 90 %, south 100 %, overall 95 %
    return y, region, champion, challenger


def _slice_names(verdict) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.name for c in verdict.checks if c.name.startswith("no regression on slices")]


def test_better_on_average_but_worse_on_one_slice_fails_and_names_the_worst_value() -> None:
    """A challenger better overall that loses 10 points on one region fails the slice check, naming that region."""
    y, region, champion, challenger = _regional()
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"region": region})
    assert _check(verdict, "accuracy improvement").passed is True
    assert _check(verdict, "95% interval").passed is True
    check = _check(verdict, "no regression on slices of region")
    assert check.name == "no regression on slices of region"
    assert check.passed is False
    assert "region=north" in check.detail
    assert "1.0000 -> 0.9000" in check.detail
    assert "2 slice(s) judged" in check.detail
    assert verdict.passed is False


def test_one_check_per_slice_column() -> None:
    """Each configured slice column gets its own check, judged on its own values."""
    y, region, champion, challenger = _regional()
    parity = np.array(["even", "odd"] * 100, dtype=object)
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"region": region, "parity": parity})
    assert _slice_names(verdict) == ["no regression on slices of region", "no regression on slices of parity"]
    assert _check(verdict, "no regression on slices of region").passed is False
    assert _check(verdict, "no regression on slices of parity").passed is True


def test_a_regression_on_a_slice_smaller_than_min_slice_rows_is_not_judged() -> None:
    """A region with fewer rows than min_slice_rows may get worse without failing the gate."""
    y = _labels(200)
    region = np.array(["tiny"] * 20 + ["big"] * 180, dtype=object)  # 20 < the default minimum of 30
    champion = _flip(y, range(100, 140))
    challenger = _flip(y, range(10))  # tiny slice: 100 % -> 50 %
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is True
    assert "region=tiny" not in check.detail
    assert "region=big" in check.detail
    assert "1 slice(s) judged" in check.detail
    assert verdict.passed is True


def test_the_same_small_slice_is_judged_once_min_slice_rows_allows_it() -> None:
    """Lowering min_slice_rows below a slice's size makes its regression count again."""
    y = _labels(200)
    region = np.array(["tiny"] * 20 + ["big"] * 180, dtype=object)
    champion = _flip(y, range(100, 140))
    challenger = _flip(y, range(10))
    verdict = gate("classification", y, champion, challenger, PromotionSettings(min_slice_rows=20),
                   slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is False
    assert "region=tiny" in check.detail
    assert "2 slice(s) judged" in check.detail


def test_slice_check_says_so_when_no_value_has_enough_rows() -> None:
    """When every value of a slice column is below min_slice_rows, the check passes and says none was judged."""
    y, region, champion, challenger = _regional()
    verdict = gate("classification", y, champion, challenger, PromotionSettings(min_slice_rows=101),
                   slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is True
    assert check.detail == "no value of 'region' has 101+ rows"


def test_slice_worsening_within_the_tolerance_passes() -> None:
    """A slice that gets worse by less than slice_tolerance does not fail the gate."""
    y, region, champion, challenger = _regional()
    verdict = gate("classification", y, champion, challenger, PromotionSettings(slice_tolerance=0.15),
                   slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is True
    assert "tolerance 0.15" in check.detail
    assert verdict.passed is True


def test_slice_worsening_of_one_row_in_a_hundred_passes_the_default_tolerance() -> None:
    """Losing one point of accuracy on a region stays within the default 0.02 tolerance."""
    y, region, champion, _ = _regional()
    challenger = _flip(y, [0])  # north 100 % -> 99 %
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is True
    assert "region=north" in check.detail
    assert verdict.passed is True


def _segmented_regression(a_champion: float, a_challenger: float, b_champion: float,
                          b_challenger: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """120 rows, 60 in segment 'a' then 60 in 'b'; each model's RMSE per segment is the given error size."""
    y = np.linspace(0.0, 100.0, 120)
    signs = np.where(np.arange(120) % 2 == 0, 1.0, -1.0)
    in_a = np.arange(120) < 60
    segment = np.where(in_a, "a", "b").astype(object)
    champion = y + np.where(in_a, a_champion, b_champion) * signs
    challenger = y + np.where(in_a, a_challenger, b_challenger) * signs
    return y, segment, champion, challenger


def test_regression_slice_with_a_higher_rmse_fails() -> None:
    """For RMSE, a segment whose error rises fails the slice check, even when the overall RMSE falls."""
    y, segment, champion, challenger = _segmented_regression(0.5, 1.0, 3.0, 0.5)
    verdict = gate("regression", y, champion, challenger, SETTINGS, slices={"segment": segment})
    assert verdict.improvement > 0
    check = _check(verdict, "no regression on slices of segment")
    assert check.passed is False
    assert "segment=a: rmse 0.5000 -> 1.0000" in check.detail
    assert "(-0.5000;" in check.detail
    assert verdict.passed is False


def test_regression_slices_with_a_lower_rmse_everywhere_pass() -> None:
    """For RMSE, a challenger whose error falls on every segment passes the slice check."""
    y, segment, champion, challenger = _segmented_regression(1.0, 0.5, 3.0, 0.5)
    verdict = gate("regression", y, champion, challenger, SETTINGS, slices={"segment": segment})
    check = _check(verdict, "no regression on slices of segment")
    assert check.passed is True
    assert "segment=a: rmse 1.0000 -> 0.5000 (+0.5000;" in check.detail  # the least improved segment
    assert verdict.passed is True


def test_missing_values_in_a_slice_column_are_not_a_slice() -> None:
    """Rows whose slice value is None or NaN are not judged as a slice of their own."""
    y = _labels(200)
    region = np.array([None] * 40 + [float("nan")] * 40 + ["north"] * 60 + ["south"] * 60, dtype=object)
    champion = _flip(y, range(140, 180))  # wrong on 40 south rows
    challenger = _flip(y, list(range(10)) + list(range(40, 50)))  # wrong on 10 None rows and 10 NaN rows
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"region": region})
    check = _check(verdict, "no regression on slices of region")
    assert check.passed is True
    assert "2 slice(s) judged" in check.detail
    assert "None" not in check.detail
    assert "nan" not in check.detail


def test_numeric_slice_column_with_nan_gaps_is_judged_on_its_numbers() -> None:
    """A float slice column with NaN gaps is judged on its numeric values only, without crashing."""
    y, _, champion, challenger = _regional()
    store = np.array([1.0] * 95 + [np.nan] * 10 + [2.0] * 95)
    verdict = gate("classification", y, champion, challenger, SETTINGS, slices={"store": store})
    check = _check(verdict, "no regression on slices of store")
    assert check.passed is False
    assert "store=1.0" in check.detail
    assert "2 slice(s) judged" in check.detail


@pytest.mark.parametrize(("max_churn", "passed"), [(0.1, False), (0.175, True), (0.5, True)])
def test_churn_above_the_cap_fails_and_at_or_below_passes(max_churn: float, passed: bool) -> None:
    """With max_churn set, a challenger changing 17.5 % of predictions fails a cap below that and passes one at or above."""
    y = _labels(200)
    champion = _flip(y, range(40))
    challenger = _flip(y, range(5))  # the two disagree on rows 5-39: 35 of 200
    verdict = gate("classification", y, champion, challenger, PromotionSettings(max_churn=max_churn))
    assert verdict.churn == pytest.approx(0.175)
    check = _check(verdict, "prediction churn")
    assert check.name == "prediction churn"
    assert check.passed is passed
    assert check.detail.startswith("17.5% of predictions change")
    assert verdict.passed is passed


def test_regression_churn_above_the_cap_fails() -> None:
    """For regression, moving 30 % of predictions by more than a tenth of the target's spread fails a 25 % cap."""
    y = np.linspace(0.0, 100.0, 100)
    signs = np.where(np.arange(100) % 2 == 0, 1.0, -1.0)
    champion = y + 8.0 * signs
    challenger = champion.copy()
    challenger[:30] = y[:30]  # 30 rows move by 8 (> 0.1 × std ≈ 2.9); the others stay
    verdict = gate("regression", y, champion, challenger, PromotionSettings(max_churn=0.25))
    assert verdict.churn == pytest.approx(0.3)
    assert _check(verdict, "prediction churn").passed is False
    assert verdict.passed is False


def test_without_max_churn_churn_is_recorded_but_not_checked() -> None:
    """With max_churn unset, no churn check is added: the verdict has only the four default checks."""
    y = _labels(200)
    champion = _flip(y, range(40))
    challenger = _flip(y, range(5))
    verdict = gate("classification", y, champion, challenger, PromotionSettings(max_churn=None))
    assert verdict.churn == pytest.approx(0.175)
    assert [c.name for c in verdict.checks] == _DEFAULT_CHECKS
    assert verdict.passed is True


def test_challenger_better_than_the_baseline_passes_the_baseline_check() -> None:
    """A classifier at 97.5 % beats a baseline that always says 'yes' (50 %)."""
    y = _labels(200)
    baseline = np.array(["yes"] * 200, dtype=object)
    verdict = gate("classification", y, _flip(y, range(40)), _flip(y, range(5)), SETTINGS,
                   baseline_predictions=baseline)
    check = _check(verdict, "beats the baseline")
    assert check.name == "beats the baseline"
    assert check.passed is True
    assert check.detail == "accuracy 0.9750 vs baseline 0.5000"
    assert verdict.passed is True


@pytest.mark.parametrize("baseline_errors", [5, 0], ids=["as-good", "better"])
def test_challenger_no_better_than_the_baseline_fails(baseline_errors: int) -> None:
    """A challenger that only ties or trails the baseline's accuracy fails the gate."""
    y = _labels(200)
    baseline = _flip(y, range(100, 100 + baseline_errors))
    verdict = gate("classification", y, _flip(y, range(40)), _flip(y, range(5)), SETTINGS,
                   baseline_predictions=baseline)
    assert _check(verdict, "accuracy improvement").passed is True
    assert _check(verdict, "beats the baseline").passed is False
    assert verdict.passed is False


def test_regression_baseline_is_beaten_by_a_lower_rmse() -> None:
    """For RMSE, a challenger beats the baseline when its error is lower, and fails when it is higher."""
    y = np.linspace(0.0, 100.0, 60)
    signs = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    champion, challenger = y + 2.0 * signs, y + 0.5 * signs
    mean_baseline = np.full(60, y.mean())
    sharp_baseline = y + 0.1 * signs
    beaten = gate("regression", y, champion, challenger, SETTINGS, baseline_predictions=mean_baseline)
    unbeaten = gate("regression", y, champion, challenger, SETTINGS, baseline_predictions=sharp_baseline)
    assert _check(beaten, "beats the baseline").passed is True
    assert beaten.passed is True
    assert _check(unbeaten, "beats the baseline").passed is False
    assert _check(unbeaten, "beats the baseline").detail == "rmse 0.5000 vs baseline 0.1000"
    assert unbeaten.passed is False


def test_without_baseline_predictions_no_baseline_check_is_added() -> None:
    """No baseline predictions, no baseline check."""
    y = _labels(200)
    verdict = gate("classification", y, _flip(y, range(40)), _flip(y, range(5)), SETTINGS)
    assert all(c.name != "beats the baseline" for c in verdict.checks)


def _clear_win():  # type: ignore[no-untyped-def]
    y = _labels(200)
    return y, _flip(y, range(40)), _flip(y, range(5))


def test_challenger_four_times_slower_fails_the_latency_cap() -> None:
    """A challenger 4× slower to predict than the champion fails the default 3× latency cap."""
    y, champion, challenger = _clear_win()
    costs = ModelCosts(champion_seconds_per_1k=0.01, challenger_seconds_per_1k=0.04,
                       champion_bytes=1_000_000, challenger_bytes=1_000_000)
    verdict = gate("classification", y, champion, challenger, SETTINGS, costs=costs)
    latency = _check(verdict, "prediction latency")
    assert latency.name == "prediction latency"
    assert latency.passed is False
    assert "4.00×, cap 3×" in latency.detail
    assert "40.0 ms vs 10.0 ms" in latency.detail
    assert _check(verdict, "serialized size").passed is True
    assert verdict.passed is False


def test_challenger_six_times_larger_fails_the_size_cap() -> None:
    """A challenger 6× larger when serialized than the champion fails the default 5× size cap."""
    y, champion, challenger = _clear_win()
    costs = ModelCosts(champion_seconds_per_1k=0.01, challenger_seconds_per_1k=0.01,
                       champion_bytes=1_000_000, challenger_bytes=6_000_000)
    verdict = gate("classification", y, champion, challenger, SETTINGS, costs=costs)
    size = _check(verdict, "serialized size")
    assert size.name == "serialized size"
    assert size.passed is False
    assert "6.00×, cap 5×" in size.detail
    assert "6.00 MB vs 1.00 MB" in size.detail
    assert _check(verdict, "prediction latency").passed is True
    assert verdict.passed is False


@pytest.mark.parametrize(
    ("champion_seconds", "challenger_seconds", "champion_bytes", "challenger_bytes"),
    [(0.25, 0.75, 1_000, 5_000), (0.02, 0.01, 2_000, 1_000)],
    ids=["at-the-caps", "cheaper"],
)
def test_costs_within_the_caps_pass(champion_seconds: float, challenger_seconds: float,
                                    champion_bytes: int, challenger_bytes: int) -> None:
    """A challenger at most 3× slower and 5× larger than the champion passes both cost checks."""
    y, champion, challenger = _clear_win()
    costs = ModelCosts(champion_seconds, challenger_seconds, champion_bytes, challenger_bytes)
    verdict = gate("classification", y, champion, challenger, SETTINGS, costs=costs)
    assert _check(verdict, "prediction latency").passed is True
    assert _check(verdict, "serialized size").passed is True
    assert verdict.passed is True


def test_cost_caps_follow_the_settings() -> None:
    """Raising max_latency_ratio and max_size_ratio lets a 4× slower, 6× larger challenger pass."""
    y, champion, challenger = _clear_win()
    costs = ModelCosts(0.01, 0.04, 1_000, 6_000)
    settings = PromotionSettings(max_latency_ratio=4.5, max_size_ratio=6.5)
    verdict = gate("classification", y, champion, challenger, settings, costs=costs)
    assert _check(verdict, "prediction latency").passed is True
    assert _check(verdict, "serialized size").passed is True


def test_zero_champion_latency_does_not_crash() -> None:
    """A champion measured at zero seconds gives a latency verdict instead of a division error."""
    y, champion, challenger = _clear_win()
    slower = gate("classification", y, champion, challenger, SETTINGS, costs=ModelCosts(0.0, 0.002, 1_000, 1_000))
    assert _check(slower, "prediction latency").passed is False
    assert "0.0 ms per 1,000 rows" in _check(slower, "prediction latency").detail
    both_zero = gate("classification", y, champion, challenger, SETTINGS, costs=ModelCosts(0.0, 0.0, 0, 0))
    assert _check(both_zero, "prediction latency").passed is True
    assert _check(both_zero, "serialized size").passed is True


def test_nan_regression_challenger_with_slices_skips_the_slice_checks() -> None:
    """A regression challenger that outputs NaN fails the gate without crashing, and its slices are not judged."""
    y = np.arange(60, dtype=float)
    champion = y + 3.0
    challenger = y.copy()
    challenger[7] = np.nan
    segment = np.array(["a", "b"] * 30, dtype=object)
    verdict = gate("regression", y, champion, challenger, PromotionSettings(min_slice_rows=5, max_churn=0.5),
                   slices={"segment": segment}, baseline_predictions=np.full(60, y.mean()),
                   costs=ModelCosts(0.01, 0.01, 1_000, 1_000))
    assert verdict.passed is False
    assert _check(verdict, "finite outputs").passed is False
    assert _slice_names(verdict) == []
    assert _check(verdict, "beats the baseline").passed is False
    assert _check(verdict, "prediction churn").passed is False
    assert verdict.summary().startswith("gate FAILED on 60 held-out rows")


def test_a_slice_column_missing_from_the_holdout_fails_its_check() -> None:
    """A misspelt slice column does not switch the slice check off: it fails, naming the column."""
    y = _labels(200)
    verdict = gate("classification", y, _flip(y, range(40)), _flip(y, range(5)), PromotionSettings(),
                   slices={"sitee": None})
    check = _check(verdict, "no regression on slices of sitee")
    assert check.passed is False
    assert "'sitee' is not a column" in check.detail
    assert verdict.passed is False


def test_predictions_serve_when_there_is_one_finite_value_per_row() -> None:
    import numpy as np

    from retrainer.core.gate import serves

    assert serves(np.array([0.1, 2.0]), 2)
    assert not serves(np.array([0.1, np.inf]), 2)
    assert not serves(np.array([0.1]), 2)
    assert serves(np.array(["a", "b"], dtype=object), 2)  # class labels: no finiteness to check


# A figure printed as NaN ('nan', '+nan'), not the words "NaN/inf" of the finite check's description.
_NAN = re.compile(r"(?<![A-Za-z/])[+-]?nan(?![A-Za-z/])", re.IGNORECASE)


def test_too_few_held_out_rows_is_a_named_reason_and_no_nan_reaches_the_report() -> None:
    """Ten rows: the interval check fails saying why, and the report a person reads holds no 'nan'."""
    y = _labels(10)
    verdict = gate("classification", y, _flip(y, [0, 1]), y, SETTINGS, holdout_source="10 of 'w05'")
    interval = _check(verdict, "95% interval")
    assert not interval.passed
    assert interval.detail.startswith("no interval: 10 held-out rows are too few")
    assert not _NAN.search(verdict.summary())
    assert "on 10 held-out rows (10 of 'w05')" in verdict.summary()


def test_a_challenger_with_nan_outputs_reads_as_not_measured_not_nan() -> None:
    y = np.arange(50, dtype=float)
    challenger = y.copy()
    challenger[7] = np.nan
    verdict = gate("regression", y, y + 3.0, challenger, SETTINGS, baseline_predictions=np.full(50, 25.0))
    assert not _NAN.search(verdict.summary())
    assert "challenger n/a" in verdict.summary()
