"""The retraining decision (retrainer.core.policy.decide): pure rules over plain signals and history."""

from __future__ import annotations

from typing import Any

import pytest

from retrainer.config import PolicySettings
from retrainer.core.decision import Decision, PastCycle, Signals
from retrainer.core.metrics import MetricSpec, primary_metric
from retrainer.core.policy import decide

ACCURACY = primary_metric("classification")
RMSE = primary_metric("regression")


def _settings(**overrides: Any) -> PolicySettings:
    values: dict[str, Any] = {
        "drift_share_threshold": 0.3,
        "drift_persistence_batches": 2,
        "max_relative_drop": 0.05,
        "max_champion_age_days": 30.0,
        "cooldown_batches": 1,
        "min_new_labelled_rows": 200,
    }
    values.update(overrides)
    return PolicySettings(**values)


def _signals(batch_index: int, **overrides: Any) -> Signals:
    values: dict[str, Any] = {
        "batch_index": batch_index,
        "valid": True,
        "drift_share": 0.0,
        "champion_age_days": 1.0,
        "new_labelled_rows": 1000,
    }
    values.update(overrides)
    return Signals(**values)


def _drifted(batch_index: int, decision: str = "none") -> PastCycle:
    return PastCycle(batch_index, decision, dataset_drift=True)


def _calm(batch_index: int, decision: str = "none") -> PastCycle:
    return PastCycle(batch_index, decision, dataset_drift=False)


# --- rejection -------------------------------------------------------------------------------


def test_invalid_batch_is_rejected_with_each_critical_failure_as_a_reason() -> None:
    """A batch that failed critical expectations is rejected, and each failure is listed as a reason."""
    signals = _signals(
        4, valid=False, critical_failures=["column 'x1' missing", "temp_c out of range"], drift_share=0.9
    )
    decision = decide(signals, [], _settings())
    assert decision.action == "reject_batch"
    assert decision.reasons == ["critical: column 'x1' missing", "critical: temp_c out of range"]
    assert decision.window_start is None


def test_invalid_batch_is_rejected_even_when_a_retrain_would_otherwise_fire() -> None:
    """A rejected batch never triggers a retrain, even with a stale champion and a big performance drop."""
    signals = _signals(
        4, valid=False, critical_failures=["bad dtype"], champion_age_days=400.0,
        metric=ACCURACY, metric_value=0.5, reference_metric=0.9,
    )
    assert decide(signals, [], _settings()).action == "reject_batch"


def test_a_refused_champion_decides_nothing_but_a_bad_batch_is_still_rejected() -> None:
    """With the champion refused (untrusted model) no rule retrains, even a stale one; validation still rules."""
    refused = _signals(4, champion_refused="saved as 'pickle'", champion_age_days=400.0, drift_share=0.9)
    decision = decide(refused, [], _settings())
    assert (decision.action, decision.reasons) == ("none", ["champion refused: saved as 'pickle'"])
    rejected = _signals(4, valid=False, critical_failures=["bad dtype"], champion_refused="saved as 'pickle'")
    assert decide(rejected, [], _settings()).action == "reject_batch"


# --- performance -----------------------------------------------------------------------------


def test_performance_drop_beyond_tolerance_retrains_at_once_from_the_current_batch() -> None:
    """An accuracy drop larger than max_relative_drop retrains right away, training from this batch on."""
    signals = _signals(7, metric=ACCURACY, metric_value=0.8, reference_metric=0.9)
    decision = decide(signals, [_calm(6)], _settings())
    assert decision == Decision(
        "retrain", ["accuracy 0.800 vs champion's 0.900 (11.1% worse > 5%)"], window_start=7, dataset_drift=False
    )


def test_performance_drop_with_a_drift_run_still_starts_the_window_at_the_current_batch() -> None:
    """A performance retrain during a drift run trains from the current batch, not from the run's start."""
    signals = _signals(9, drift_share=0.6, metric=ACCURACY, metric_value=0.7, reference_metric=0.9)
    decision = decide(signals, [_drifted(7), _drifted(8)], _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 9
    assert decision.dataset_drift is True
    assert decision.reasons == ["accuracy 0.700 vs champion's 0.900 (22.2% worse > 5%)"]


def test_performance_drop_within_tolerance_does_not_retrain() -> None:
    """An accuracy dip smaller than max_relative_drop leaves the champion alone with no reasons."""
    signals = _signals(3, metric=ACCURACY, metric_value=0.87, reference_metric=0.9)  # 3.3 % worse
    assert decide(signals, [], _settings()) == Decision("none", [], dataset_drift=False)


def test_regression_rmse_rising_beyond_tolerance_retrains() -> None:
    """For RMSE (lower is better) a rise beyond the tolerance counts as a drop in performance and retrains."""
    signals = _signals(5, metric=RMSE, metric_value=1.2, reference_metric=1.0)
    decision = decide(signals, [], _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["rmse 1.200 vs champion's 1.000 (20.0% worse > 5%)"]
    assert decision.window_start == 5


@pytest.mark.parametrize("value", [0.5, 1.04])
def test_regression_rmse_falling_or_rising_slightly_does_not_retrain(value: float) -> None:
    """A lower RMSE, or one only slightly higher than the champion's own, does not retrain."""
    signals = _signals(5, metric=RMSE, metric_value=value, reference_metric=1.0)
    assert decide(signals, [], _settings()) == Decision("none", [])


def test_higher_is_better_custom_metric_falling_retrains() -> None:
    """Any higher-is-better metric falling beyond the tolerance retrains, whatever its name."""
    signals = _signals(2, metric=MetricSpec("auc", True), metric_value=0.6, reference_metric=0.8)
    decision = decide(signals, [], _settings(max_relative_drop=0.1))
    assert decision.action == "retrain"
    assert decision.reasons == ["auc 0.600 vs champion's 0.800 (25.0% worse > 10%)"]


# --- drift persistence -----------------------------------------------------------------------


def test_first_drifted_batch_waits_for_persistence() -> None:
    """One drifted batch alone does not retrain; the reason says the policy is waiting for more batches."""
    decision = decide(_signals(3, drift_share=0.5), [_calm(2)], _settings())
    assert decision.action == "none"
    assert decision.dataset_drift is True
    assert decision.window_start is None
    assert decision.reasons == ["drift_share 0.50 > 0.30, waiting for 2 batches or a performance drop"]


def test_drift_persisting_the_required_batches_retrains_from_the_first_batch_of_the_run() -> None:
    """Drift that persisted drift_persistence_batches in a row retrains, training from where the drift began."""
    decision = decide(_signals(4, drift_share=0.5), [_calm(2), _drifted(3)], _settings())
    assert decision == Decision(
        "retrain", ["drift_share 0.50 > 0.30 for 2 batches"], window_start=3, dataset_drift=True
    )


def test_longer_persistence_counts_every_batch_of_the_run() -> None:
    """With a persistence of three, the third drifted batch retrains and the window starts at the first."""
    settings = _settings(drift_persistence_batches=3)
    history = [_calm(4), _drifted(5), _drifted(6)]
    decision = decide(_signals(7, drift_share=0.4), history, settings)
    assert decision.action == "retrain"
    assert decision.window_start == 5
    assert decision.reasons == ["drift_share 0.40 > 0.30 for 3 batches"]
    # one batch short of the run: still waiting
    assert decide(_signals(6, drift_share=0.4), history[:2], settings).action == "none"


def test_rejected_batches_inside_a_drift_run_are_skipped_not_counted() -> None:
    """Rejected batches between drifted ones neither break the drift run nor count towards it."""
    history = [_calm(1), _drifted(2), PastCycle(3, "reject_batch"), PastCycle(4, "reject_batch", dataset_drift=True)]
    decision = decide(_signals(5, drift_share=0.5), history, _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 2
    assert decision.reasons == ["drift_share 0.50 > 0.30 for 2 batches"]

    # with persistence 3 the two rejected batches do not make up the missing one
    assert decide(_signals(5, drift_share=0.5), history, _settings(drift_persistence_batches=3)).action == "none"


def test_a_non_drifted_batch_breaks_the_drift_run() -> None:
    """A calm accepted batch between drifted ones resets the count, so the drift must persist again."""
    settings = _settings(drift_persistence_batches=3)
    history = [_drifted(1), _drifted(2), _calm(3), _drifted(4)]
    decision = decide(_signals(5, drift_share=0.5), history, settings)
    assert decision.action == "none"
    assert decision.dataset_drift is True
    assert decision.reasons == ["drift_share 0.50 > 0.30, waiting for 3 batches or a performance drop"]


def test_drift_share_at_the_threshold_is_not_dataset_drift() -> None:
    """A drift share equal to the threshold is not dataset drift (the threshold must be exceeded)."""
    decision = decide(_signals(4, drift_share=0.3), [_drifted(3)], _settings())
    assert decision.action == "none"
    assert decision.dataset_drift is False


# --- cooldown --------------------------------------------------------------------------------


def test_cooldown_after_a_retrain_blocks_drift_only_retrains() -> None:
    """Within cooldown_batches after a retrain, persistent drift alone does not retrain again."""
    settings = _settings(drift_persistence_batches=1, cooldown_batches=2)
    history = [_drifted(10, "retrain"), _drifted(11)]
    decision = decide(_signals(12, drift_share=0.6), history, settings)
    assert decision.action == "none"
    assert decision.dataset_drift is True


def test_drift_retrains_again_once_the_cooldown_has_passed() -> None:
    """Once cooldown_batches have passed since the last retrain, persistent drift retrains again."""
    settings = _settings(drift_persistence_batches=1, cooldown_batches=2)
    history = [_drifted(10, "retrain"), _drifted(11), _drifted(12)]
    decision = decide(_signals(13, drift_share=0.6), history, settings)
    assert decision.action == "retrain"
    # the run stops at the retrain: it starts at 11, the first drifted batch after it
    assert decision.window_start == 11
    assert decision.reasons == ["drift_share 0.60 > 0.30 for 3 batches"]


def test_init_counts_as_a_retrain_for_the_cooldown() -> None:
    """The batch the first champion was trained on starts a cooldown just like a retrain."""
    settings = _settings(drift_persistence_batches=1, cooldown_batches=1)
    assert decide(_signals(1, drift_share=0.9), [_calm(0, "init")], settings).action == "none"
    assert decide(_signals(2, drift_share=0.9), [_calm(0, "init"), _calm(1)], settings).action == "retrain"


def test_cooldown_holds_back_a_performance_retrain_right_after_a_retrain() -> None:
    """A drop right after a retrain waits out the cool-down, saying so, instead of retraining every batch."""
    settings = _settings(cooldown_batches=2)
    signals = _signals(11, metric=ACCURACY, metric_value=0.5, reference_metric=0.9)
    decision = decide(signals, [_calm(10, "retrain")], settings)
    assert decision.action == "none"
    assert decision.reasons[-1] == "but in cool-down: 1 batch(es) since the last retrain <= 2"


def test_performance_retrain_fires_once_the_cooldown_is_over() -> None:
    """The same drop retrains once more batches than the cool-down have passed since the last retrain."""
    settings = _settings(cooldown_batches=2)
    signals = _signals(13, metric=ACCURACY, metric_value=0.5, reference_metric=0.9)
    assert decide(signals, [_calm(10, "retrain"), _calm(11), _calm(12)], settings).action == "retrain"


# --- staleness -------------------------------------------------------------------------------


def test_stale_champion_is_retrained_on_a_full_window() -> None:
    """A champion older than max_champion_age_days is retrained even with no drift or drop; no
    change was seen, so the window is not narrowed (the training window's own size applies)."""
    decision = decide(_signals(8, champion_age_days=45.0), [_calm(7)], _settings())
    assert decision == Decision("retrain", ["champion age 45.0 d, unverified for 45.0 d > 30 d"], window_start=None, dataset_drift=False)
    assert decision.training_start() == 0


def test_staleness_check_can_be_disabled() -> None:
    """With max_champion_age_days unset, an old champion is left alone."""
    decision = decide(_signals(8, champion_age_days=4000.0), [], _settings(max_champion_age_days=None))
    assert decision == Decision("none", [])


def test_staleness_and_performance_reasons_are_both_listed() -> None:
    """When staleness and a performance drop fire together, both reasons appear, staleness first."""
    signals = _signals(8, champion_age_days=31.0, metric=ACCURACY, metric_value=0.8, reference_metric=0.9)
    decision = decide(signals, [], _settings())
    assert decision.action == "retrain"
    assert decision.reasons == [
        "champion age 31.0 d, unverified for 31.0 d > 30 d",
        "accuracy 0.800 vs champion's 0.900 (11.1% worse > 5%)",
    ]


def _served(batch_index: int, age: float, decision: str = "none", version: str = "1", **fields: Any) -> PastCycle:
    return PastCycle(batch_index, decision, champion_version=version, champion_age_days=age, **fields)


def test_labels_showing_the_champion_holding_verify_it_so_a_stationary_stream_never_retrains_on_age() -> None:
    """An old champion whose metric holds on this batch's own labels was just checked against the
    present: no staleness retrain, and the check shows 0 unverified days."""
    signals = _signals(8, champion_age_days=45.0, champion_version="1", metric=ACCURACY, metric_value=0.89,
                       reference_metric=0.9)
    decision = decide(signals, [_calm(0, "init"), _calm(7)], _settings())
    assert decision.action == "none"
    [check] = [c for c in decision.checks if c.rule == "staleness"]
    assert (check.signal, check.value, check.fired) == ("unverified_days", 0.0, False)


def test_a_retrain_the_gate_refused_verifies_the_champion_and_staleness_waits_a_whole_limit_again() -> None:
    """The gate answered the age limit ('no fresher model is better') at age 35: the rule does not ask again
    until 30 more days have passed without a verification."""
    history = [_calm(0, "init"), _served(5, 35.0, "retrain", gate_refused=True)]
    unlabelled = {"champion_version": "1"}
    assert decide(_signals(9, champion_age_days=60.0, **unlabelled), history, _settings()).action == "none"
    again = decide(_signals(10, champion_age_days=66.0, **unlabelled), history, _settings())
    assert again.action == "retrain"
    assert again.reasons == ["champion age 66.0 d, unverified for 31.0 d > 30 d"]


def test_only_a_holding_metric_of_this_champion_counts_as_verification() -> None:
    """A past batch where the metric dropped, or one served by another version, verified nothing; late
    labels that held did."""
    signals = _signals(9, champion_age_days=50.0, champion_version="2", reference_metric=0.9, metric=ACCURACY)
    dropped = [_served(4, 40.0, version="2", metric_value=0.6)]
    other = [_served(4, 40.0, version="1", metric_value=0.9)]
    held = [_served(4, 40.0, version="2", metric_value=0.9)]
    assert decide(signals, dropped, _settings()).action == "retrain"
    assert decide(signals, other, _settings()).action == "retrain"
    assert decide(signals, held, _settings()).action == "none"


def test_a_drop_within_the_batch_s_noise_verifies_the_champion_as_the_performance_rule_judges_it() -> None:
    """Verification is the performance rule's own verdict: 6 % worse on ~330 rows (standard error 0.026) is
    chance, so that batch verified the champion; the same number on 50,000 rows did not."""
    signals = _signals(9, champion_age_days=50.0, champion_version="2", reference_metric=0.697, metric=ACCURACY)
    noisy = [_served(4, 40.0, version="2", metric_value=0.655, metric_std_error=0.026)]
    sure = [_served(4, 40.0, version="2", metric_value=0.655, metric_std_error=0.002)]
    assert decide(signals, noisy, _settings()).action == "none"
    assert decide(signals, sure, _settings()).action == "retrain"


def test_the_hard_age_limit_retrains_whatever_the_verification_once_per_period() -> None:
    """`retrain_every_days` (off by default) retrains a champion older than it even when its metric holds,
    and a retrain under that champion answers it for one period."""
    assert PolicySettings().retrain_every_days is None
    settings = _settings(retrain_every_days=30.0)
    holding = {"champion_version": "1", "metric": ACCURACY, "metric_value": 0.9, "reference_metric": 0.9}
    due = decide(_signals(5, champion_age_days=31.0, **holding), [_calm(0, "init")], settings)
    assert due.action == "retrain"
    assert due.reasons == ["champion age 31.0 d > the hard limit of 30 d (policy.retrain_every_days)"]
    history = [_calm(0, "init"), _served(5, 31.0, "retrain", gate_refused=True)]
    assert decide(_signals(9, champion_age_days=45.0, **holding), history, settings).action == "none"
    assert decide(_signals(12, champion_age_days=62.0, **holding), history, settings).action == "retrain"


def test_a_drop_within_the_batch_s_own_noise_does_not_retrain_and_says_so() -> None:
    """Accuracy 0.655 against 0.697 is 6 % worse, but on ~330 labelled rows (standard error 0.026) that is
    chance: no retrain, and the reason says the drop was within the batch's noise."""
    signals = _signals(4, metric=ACCURACY, metric_value=0.655, reference_metric=0.697, metric_std_error=0.026)
    decision = decide(signals, [_calm(0, "init"), _calm(3)], _settings())
    assert decision.action == "none"
    assert decision.reasons == ["accuracy 0.655 vs champion's 0.697 (6.0% worse), within this batch's noise "
                                "(±0.043 at 95% confidence)"]
    [check] = [c for c in decision.checks if c.rule == "performance"]
    assert check.fired is False
    assert check.value is not None
    assert check.value < 0


def test_the_same_drop_on_many_rows_or_at_the_point_estimate_retrains() -> None:
    """On 50,000 rows (standard error 0.002) the 6 % drop is real; `drop_confidence: 0.5` judges the point estimate."""
    many = _signals(4, metric=ACCURACY, metric_value=0.655, reference_metric=0.697, metric_std_error=0.002)
    assert decide(many, [_calm(0, "init"), _calm(3)], _settings()).action == "retrain"
    noisy = _signals(4, metric=ACCURACY, metric_value=0.655, reference_metric=0.697, metric_std_error=0.026)
    assert decide(noisy, [_calm(0, "init"), _calm(3)], _settings(drop_confidence=0.5)).action == "retrain"


def test_a_collapse_retrains_even_on_a_small_batch() -> None:
    """70 labelled rows (standard error ~0.06): accuracy 0.45 against 0.85 is far beyond chance."""
    signals = _signals(4, metric=ACCURACY, metric_value=0.45, reference_metric=0.85, metric_std_error=0.06)
    assert decide(signals, [_calm(0, "init"), _calm(3)], _settings()).action == "retrain"


def test_an_rmse_rise_within_noise_is_judged_at_its_optimistic_end() -> None:
    """Lower is better: the optimistic end is the lower RMSE."""
    signals = _signals(4, metric=RMSE, metric_value=1.08, reference_metric=1.0, metric_std_error=0.03)
    assert decide(signals, [_calm(0, "init"), _calm(3)], _settings()).action == "none"
    sure = _signals(4, metric=RMSE, metric_value=1.08, reference_metric=1.0, metric_std_error=0.005)
    assert decide(sure, [_calm(0, "init"), _calm(3)], _settings()).action == "retrain"


# --- labelled rows ---------------------------------------------------------------------------


def test_too_few_labelled_rows_turns_a_retrain_into_none_with_an_explanation() -> None:
    """A retrain is held back when the batch brings too few labels, and the reasons say why."""
    signals = _signals(6, metric=ACCURACY, metric_value=0.6, reference_metric=0.9, new_labelled_rows=50)
    decision = decide(signals, [], _settings())
    assert decision.action == "none"
    assert decision.window_start is None
    assert decision.reasons == [
        "accuracy 0.600 vs champion's 0.900 (33.3% worse > 5%)",
        "but only 50 new labelled rows since the champion's training window < 200",
    ]


def test_exactly_the_minimum_of_labelled_rows_is_enough() -> None:
    """A batch with exactly min_new_labelled_rows labels is enough to retrain."""
    signals = _signals(6, champion_age_days=99.0, new_labelled_rows=200)
    assert decide(signals, [], _settings()).action == "retrain"


# --- quiet -----------------------------------------------------------------------------------


def test_nothing_close_gives_none_with_no_reasons() -> None:
    """A calm batch with a good metric and a young champion gives 'none' with an empty reason list."""
    signals = _signals(3, drift_share=0.05, metric=ACCURACY, metric_value=0.91, reference_metric=0.9)
    assert decide(signals, [_calm(1, "init"), _calm(2)], _settings()) == Decision("none", [], None, False)


def test_missing_measurements_give_none_with_no_reasons() -> None:
    """A batch with no labels, no drift measurement and an unknown age gives a quiet 'none'."""
    signals = Signals(batch_index=3, valid=True)
    assert decide(signals, [], _settings()) == Decision("none", [])


def test_feature_drift_below_the_dataset_threshold_is_mentioned_but_does_not_retrain() -> None:
    """Drift in a few features, below the dataset drift share, is reported without retraining."""
    signals = _signals(3, drift_share=0.1, drifted_features=["x1", "x2"])
    decision = decide(signals, [], _settings())
    assert decision.action == "none"
    assert decision.reasons == ["drift in x1, x2 (share 0.10, below the dataset drift threshold)"]


def test_the_decision_names_each_signal_its_value_its_threshold_and_what_fired() -> None:
    """A performance retrain reports every rule it looked at, with value and threshold, and which fired."""
    from retrainer.core.decision import SignalCheck

    settings = _settings(cooldown_batches=1, min_new_labelled_rows=100)
    signals = Signals(batch_index=5, valid=True, drift_share=0.1, metric=ACCURACY, metric_value=0.6,
                      reference_metric=0.8, champion_age_days=3.0, new_labelled_rows=500)
    decision = decide(signals, [_calm(0, "init"), _calm(4)], settings)
    assert decision.action == "retrain"
    checks = {check.rule: check for check in decision.checks}
    assert list(checks) == ["validation", "staleness", "performance", "drift", "outgrown reference", "cool-down",
                            "minimum labels"]
    assert checks["outgrown reference"] == SignalCheck("outgrown reference", "relative_metric_gain",
                                                       pytest.approx(-0.25), 0.1, False)
    assert checks["performance"] == SignalCheck("performance", "relative_metric_drop", pytest.approx(0.25),
                                                settings.max_relative_drop, True)
    assert checks["staleness"] == SignalCheck("staleness", "unverified_days", 3.0, 30.0, False)
    assert checks["drift"] == SignalCheck("drift", "drift_share", 0.1, 0.3, False)
    assert checks["cool-down"] == SignalCheck("cool-down", "batches_since_retrain", 5.0, 1.0, False)
    assert checks["minimum labels"].fired is False
    assert checks["minimum labels"].value == 500.0


# --- estimated performance -------------------------------------------------------------------

from retrainer.core.decision import SignalCheck  # noqa: E402


def test_estimated_accuracy_drop_without_labels_retrains_on_an_unnarrowed_window() -> None:
    """Without labels, an estimated accuracy worse than the champion's own by more than 5 % retrains at once,
    on the full window: the batch has no labels to train on and nothing says where a change began."""
    signals = _signals(6, metric=ACCURACY, estimated_metric_value=0.8, reference_metric=0.9)
    decision = decide(signals, [_calm(5)], _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["estimated accuracy 0.800 vs champion's 0.900 (11.1% worse > 5%)"]
    assert decision.reasons[0].startswith("estimated accuracy")
    assert decision.window_start is None
    checks = {check.rule: check for check in decision.checks}
    assert checks["estimated performance"].signal == "estimated_relative_metric_drop"
    assert checks["estimated performance"].value == pytest.approx(1 / 9)
    assert checks["estimated performance"].threshold == 0.05
    assert checks["estimated performance"].fired is True


def test_estimated_accuracy_within_tolerance_does_not_retrain() -> None:
    """An estimated accuracy only slightly below the champion's own leaves it alone, with no reasons."""
    signals = _signals(6, metric=ACCURACY, estimated_metric_value=0.87, reference_metric=0.9)  # 3.3 % worse
    decision = decide(signals, [_calm(5)], _settings())
    assert decision == Decision("none", [])
    checks = {check.rule: check for check in decision.checks}
    assert checks["estimated performance"].fired is False
    assert checks["estimated performance"].value == pytest.approx(0.03 / 0.9)


def test_the_default_estimated_tolerance_is_five_percent() -> None:
    """Left unset, max_estimated_drop is 5 %: a 6 % estimated drop retrains, a 4 % one does not."""
    settings = PolicySettings(min_new_labelled_rows=0)
    assert settings.max_estimated_drop == 0.05
    assert decide(_signals(6, metric=ACCURACY, estimated_metric_value=0.94, reference_metric=1.0), [],
                  settings).action == "retrain"
    assert decide(_signals(6, metric=ACCURACY, estimated_metric_value=0.96, reference_metric=1.0), [],
                  settings).action == "none"


def test_a_measured_metric_overrides_the_estimated_one() -> None:
    """When the batch has labels, the measured metric decides and the estimate is not even checked."""
    signals = _signals(6, metric=ACCURACY, metric_value=0.89, estimated_metric_value=0.5, reference_metric=0.9)
    decision = decide(signals, [_calm(5)], _settings())
    assert decision == Decision("none", [])
    rules = [check.rule for check in decision.checks]
    assert "performance" in rules
    assert "estimated performance" not in rules


def test_a_measured_drop_retrains_with_the_measured_reason_not_the_estimated_one() -> None:
    """A measured drop is reported as the measured metric even when the estimate disagrees."""
    signals = _signals(6, metric=ACCURACY, metric_value=0.7, estimated_metric_value=0.9, reference_metric=0.9)
    decision = decide(signals, [_calm(5)], _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["accuracy 0.700 vs champion's 0.900 (22.2% worse > 5%)"]


def test_estimated_performance_rule_can_be_disabled() -> None:
    """With max_estimated_drop unset, even a large estimated drop does not retrain."""
    signals = _signals(6, metric=ACCURACY, estimated_metric_value=0.3, reference_metric=0.9)
    decision = decide(signals, [_calm(5)], _settings(max_estimated_drop=None))
    assert decision == Decision("none", [])
    checks = {check.rule: check for check in decision.checks}
    assert checks["estimated performance"].threshold is None
    assert checks["estimated performance"].fired is False


def test_estimated_drop_still_needs_enough_new_labelled_rows() -> None:
    """An estimated drop is held back, saying why, when too few labelled rows arrived to train on."""
    signals = _signals(6, metric=ACCURACY, estimated_metric_value=0.6, reference_metric=0.9, new_labelled_rows=10)
    decision = decide(signals, [], _settings())
    assert decision.action == "none"
    assert decision.reasons == [
        "estimated accuracy 0.600 vs champion's 0.900 (33.3% worse > 5%)",
        "but only 10 new labelled rows since the champion's training window < 200",
    ]


# --- out-of-distribution ---------------------------------------------------------------------


def test_first_batch_with_many_out_of_distribution_rows_waits_for_persistence() -> None:
    """One batch with too many unfamiliar rows does not retrain; the reason names the ood_share and the wait."""
    decision = decide(_signals(3, ood_share=0.5), [_calm(2)], _settings(max_ood_share=0.2))
    assert decision.action == "none"
    assert decision.shifted is True
    assert decision.dataset_drift is False
    assert decision.window_start is None
    assert decision.reasons == ["ood_share 0.50 > 0.20, waiting for 2 batches or a performance drop"]
    assert "ood_share" in decision.reasons[0]


def test_out_of_distribution_rows_persisting_retrain_from_the_first_shifted_batch() -> None:
    """A second shifted batch in a row retrains on OOD rows alone, training from the first shifted batch."""
    history = [_calm(2), PastCycle(3, "none", dataset_drift=True)]
    decision = decide(_signals(4, ood_share=0.5), history, _settings(max_ood_share=0.2))
    assert decision.action == "retrain"
    assert decision.window_start == 3
    assert decision.shifted is True
    assert decision.dataset_drift is False
    assert decision.reasons == ["ood_share 0.50 > 0.20 for 2 batches"]


def test_dataset_drift_and_out_of_distribution_rows_are_both_named() -> None:
    """When drift and OOD rows persist together, the reason names both."""
    decision = decide(_signals(4, drift_share=0.5, ood_share=0.4), [_drifted(3)], _settings(max_ood_share=0.2))
    assert decision.action == "retrain"
    assert decision.dataset_drift is True
    assert decision.reasons == ["drift_share 0.50 > 0.30 and ood_share 0.40 > 0.20 for 2 batches"]


def test_ood_share_at_the_threshold_is_not_a_shift() -> None:
    """An ood_share equal to max_ood_share is not a shift (the threshold must be exceeded)."""
    decision = decide(_signals(4, ood_share=0.2), [_drifted(3)], _settings(max_ood_share=0.2))
    assert decision == Decision("none", [])
    assert decision.shifted is False
    checks = {check.rule: check for check in decision.checks}
    assert checks["out-of-distribution"] == SignalCheck("out-of-distribution", "ood_share", 0.2, 0.2, False)
    assert "drift persistence" not in checks


def test_ood_share_below_the_threshold_is_not_a_shift() -> None:
    """A small ood_share after a shifted batch neither retrains nor counts as a shift."""
    decision = decide(_signals(4, ood_share=0.05), [_drifted(3)], _settings(max_ood_share=0.2))
    assert decision.action == "none"
    assert decision.shifted is False


def test_out_of_distribution_rule_can_be_disabled() -> None:
    """With max_ood_share unset, even a batch of mostly unfamiliar rows is no shift."""
    decision = decide(_signals(4, ood_share=0.9), [_drifted(3)], _settings(max_ood_share=None))
    assert decision == Decision("none", [])
    assert decision.shifted is False
    checks = {check.rule: check for check in decision.checks}
    assert checks["out-of-distribution"] == SignalCheck("out-of-distribution", "ood_share", 0.9, None, False)


def test_the_out_of_distribution_check_is_reported_with_its_value_and_threshold() -> None:
    """The decision lists the OOD rule with the batch's share, the threshold, whether it fired, and the run length."""
    decision = decide(_signals(4, ood_share=0.5), [_drifted(3)], _settings(max_ood_share=0.25))
    checks = {check.rule: check for check in decision.checks}
    assert checks["out-of-distribution"] == SignalCheck("out-of-distribution", "ood_share", 0.5, 0.25, True)
    assert checks["drift persistence"] == SignalCheck("drift persistence", "shifted_batches_in_a_row", 2.0, 2.0, True)


def test_no_ood_measurement_gives_no_out_of_distribution_check() -> None:
    """A batch with no OOD score (e.g. scoring disabled) shows no out-of-distribution check."""
    decision = decide(_signals(4), [_calm(3)], _settings())
    assert "out-of-distribution" not in [check.rule for check in decision.checks]
    assert decision.shifted is False


# --- follow-up -------------------------------------------------------------------------------


def _narrow_retrain(batch_index: int = 10, window_start: int = 10, followup: bool = False) -> PastCycle:
    return PastCycle(batch_index, "retrain", window_start=window_start, followup=followup)


def test_followup_retrains_once_enough_batches_of_the_new_regime_arrived() -> None:
    """Two accepted batches after a narrow retrain, a follow-up retrain widens the window from the change point."""
    history = [_calm(9), _narrow_retrain(), _calm(11)]
    decision = decide(_signals(12), history, _settings(), window_batches=3)
    assert decision.action == "retrain"
    assert decision.followup is True
    assert decision.window_start == 10
    assert decision.training_start() == 10
    assert decision.reasons == [
        "follow-up: 2 batches of the new regime since the change at '#10'; widening the training window"
    ]
    assert decision.reasons[0].startswith("follow-up")
    checks = {check.rule: check for check in decision.checks}
    assert checks["follow-up"] == SignalCheck("follow-up", "followup_due", 1.0, 1.0, True)


def test_followup_is_not_due_one_batch_after_the_retrain() -> None:
    """Right after a narrow retrain (one batch since), no follow-up yet, even with no cool-down."""
    decision = decide(_signals(11), [_narrow_retrain()], _settings(cooldown_batches=0), window_batches=3)
    assert decision == Decision("none", [])
    checks = {check.rule: check for check in decision.checks}
    assert checks["follow-up"].fired is False


def test_no_followup_after_a_followup() -> None:
    """A follow-up retrain earns no further follow-up: it happens once per change."""
    history = [_narrow_retrain(followup=True), _calm(11)]
    decision = decide(_signals(12), history, _settings(), window_batches=3)
    assert decision == Decision("none", [])
    assert decision.followup is False


def test_no_followup_when_the_retrain_already_had_a_full_window() -> None:
    """A retrain that trained on a full window (batches 8-10 of 3) needs no follow-up."""
    history = [_narrow_retrain(window_start=8), _calm(11)]
    assert decide(_signals(12), history, _settings(), window_batches=3) == Decision("none", [])
    # one batch narrower (9-10 of 3) and the follow-up is due
    history = [_narrow_retrain(window_start=9), _calm(11)]
    decision = decide(_signals(12), history, _settings(), window_batches=3)
    assert decision.action == "retrain"
    assert decision.window_start == 9


def test_no_followup_when_the_window_size_is_not_given() -> None:
    """Without a training window size, the follow-up rule does not apply and is not reported."""
    decision = decide(_signals(12), [_narrow_retrain(), _calm(11)], _settings())
    assert decision == Decision("none", [])
    assert "follow-up" not in [check.rule for check in decision.checks]


def test_followup_rule_can_be_disabled() -> None:
    """With followup_after_batches unset, no follow-up retrain happens and none is reported."""
    decision = decide(_signals(12), [_narrow_retrain(), _calm(11)], _settings(followup_after_batches=None),
                      window_batches=3)
    assert decision == Decision("none", [])
    assert "follow-up" not in [check.rule for check in decision.checks]


def test_rejected_batches_do_not_count_towards_a_followup() -> None:
    """A rejected batch after the retrain is not a batch of the new regime; the follow-up waits for an accepted one."""
    history = [_narrow_retrain(), PastCycle(11, "reject_batch")]
    assert decide(_signals(12), history, _settings(), window_batches=3) == Decision("none", [])
    decision = decide(_signals(13), history + [_calm(12)], _settings(), window_batches=3)
    assert decision.action == "retrain"
    assert decision.followup is True
    assert decision.window_start == 10


def test_followup_still_needs_enough_new_labelled_rows() -> None:
    """A due follow-up is held back, saying why, when too few labelled rows arrived."""
    history = [_narrow_retrain(), _calm(11)]
    decision = decide(_signals(12, new_labelled_rows=50), history, _settings(), window_batches=3)
    assert decision.action == "none"
    assert decision.followup is False
    assert decision.window_start is None
    assert decision.reasons == [
        "follow-up: 2 batches of the new regime since the change at '#10'; widening the training window",
        "but only 50 new labelled rows since the champion's training window < 200",
    ]


def test_followup_waits_out_the_cooldown() -> None:
    """A due follow-up inside the cool-down is held back, saying so."""
    history = [_narrow_retrain(), _calm(11)]
    decision = decide(_signals(12), history, _settings(cooldown_batches=2), window_batches=3)
    assert decision.action == "none"
    assert decision.reasons[-1] == "but in cool-down: 2 batch(es) since the last retrain <= 2"


def test_no_followup_after_the_initial_champion_or_a_full_window_retrain() -> None:
    """The first champion and a staleness retrain (no change point) earn no follow-up."""
    settings = _settings(cooldown_batches=0)
    assert decide(_signals(2), [_calm(0, "init"), _calm(1)], settings, window_batches=3).action == "none"
    history = [PastCycle(10, "retrain", window_start=None), _calm(11)]
    assert decide(_signals(12), history, settings, window_batches=3).action == "none"


def test_another_trigger_takes_precedence_over_the_followup() -> None:
    """When a performance drop fires too, the retrain is a normal one from the current batch, not a follow-up."""
    history = [_narrow_retrain(), _calm(11)]
    signals = _signals(12, metric=ACCURACY, metric_value=0.6, reference_metric=0.9)
    decision = decide(signals, history, _settings(), window_batches=3)
    assert decision.action == "retrain"
    assert decision.followup is False
    assert decision.window_start == 12
    assert decision.reasons == ["accuracy 0.600 vs champion's 0.900 (33.3% worse > 5%)"]


# --- training window -------------------------------------------------------------------------


def test_staleness_only_retrain_trains_on_the_full_window() -> None:
    """A retrain for staleness alone names no change point: training may start anywhere in the window."""
    decision = decide(_signals(8, champion_age_days=45.0), [_calm(0, "init"), _calm(7)], _settings(),
                      window_batches=3)
    assert decision.action == "retrain"
    assert decision.window_start is None
    assert decision.training_start() == 0
    assert decision.followup is False


def test_performance_drop_trains_from_the_current_batch() -> None:
    """A retrain on a performance drop starts its training window at the batch where the drop was seen."""
    decision = decide(_signals(8, metric=ACCURACY, metric_value=0.5, reference_metric=0.9), [_calm(7)], _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 8
    assert decision.training_start() == 8


# --- late labels and combined triggers -------------------------------------------------------


def test_a_drop_measured_on_late_labels_retrains_from_the_labelled_batch() -> None:
    """A drop measured on an earlier batch's late labels retrains, naming that batch and training from it."""
    signals = _signals(7, metric=ACCURACY, metric_value=0.7, reference_metric=0.9,
                       metric_source="late labels of batch 'd2'", metric_batch_index=5)
    decision = decide(signals, [_calm(0, "init"), _calm(5), _calm(6)], _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["accuracy 0.700 vs champion's 0.900 (22.2% worse > 5%) on late labels of batch 'd2'"]
    assert decision.reasons[0].endswith("on late labels of batch 'd2'")
    assert decision.window_start == 5
    assert decision.training_start() == 5


def test_late_labels_within_tolerance_do_not_retrain() -> None:
    """Late labels showing the champion as good as its validation metric trigger nothing."""
    signals = _signals(7, metric=ACCURACY, metric_value=0.89, reference_metric=0.9,
                       metric_source="late labels of batch 'd2'", metric_batch_index=5)
    assert decide(signals, [_calm(6)], _settings()) == Decision("none", [])


def test_a_stale_champion_during_a_persistent_shift_retrains_from_the_shift_start_naming_both() -> None:
    """A stale champion while a shift persisted retrains with both reasons, training from the shift's first batch."""
    history = [_calm(0, "init"), _drifted(3)]
    decision = decide(_signals(4, drift_share=0.6, champion_age_days=45.0), history, _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["champion age 45.0 d, unverified for 45.0 d > 30 d", "drift_share 0.60 > 0.30 for 2 batches"]
    assert "for 2 batches" in decision.reasons[1]
    assert decision.window_start == 3
    assert decision.dataset_drift is True
    assert decision.followup is False


def test_a_stale_champion_with_a_first_shifted_batch_keeps_the_full_window() -> None:
    """A stale champion with a shift not yet persistent retrains for staleness only, on the full window."""
    decision = decide(_signals(4, drift_share=0.6, champion_age_days=45.0), [_calm(0, "init"), _calm(3)],
                      _settings())
    assert decision.action == "retrain"
    assert decision.reasons == ["champion age 45.0 d, unverified for 45.0 d > 30 d"]
    assert decision.window_start is None


def test_a_performance_drop_during_a_persistent_shift_trains_from_the_current_batch_without_the_drift_reason() -> None:
    """A drop while a shift persisted retrains from the current batch and names the drop, not the drift."""
    history = [_calm(0, "init"), _drifted(3)]
    signals = _signals(4, drift_share=0.6, champion_age_days=45.0, metric=ACCURACY, metric_value=0.7,
                       reference_metric=0.9)
    decision = decide(signals, history, _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 4
    assert decision.reasons == ["champion age 45.0 d, unverified for 45.0 d > 30 d", "accuracy 0.700 vs champion's 0.900 (22.2% worse > 5%)"]
    assert not any("for 2 batches" in reason for reason in decision.reasons)
    assert decision.dataset_drift is True


def test_a_late_label_drop_during_a_persistent_shift_trains_from_the_labelled_batch() -> None:
    """A late-label drop during a persistent shift trains from the labelled batch, not the shift's start."""
    history = [_calm(0, "init"), _drifted(2), _drifted(3)]
    signals = _signals(4, drift_share=0.6, metric=ACCURACY, metric_value=0.7, reference_metric=0.9,
                       metric_source="late labels of batch 'd3'", metric_batch_index=3)
    decision = decide(signals, history, _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 3
    assert decision.reasons == ["accuracy 0.700 vs champion's 0.900 (22.2% worse > 5%) on late labels of batch 'd3'"]


# --- outgrown reference ----------------------------------------------------------------------


def _outgrown(batch_index: int, decision: str = "none", champion: str = "3", due: bool = False,
              window_start: int | None = None) -> PastCycle:
    return PastCycle(batch_index, decision, window_start=window_start, champion_version=champion, outgrown=True,
                     outgrown_due=due)


def _beating(batch_index: int, value: float = 0.75, champion: str = "3", metric: MetricSpec = ACCURACY,
             reference: float = 0.65) -> Signals:
    return _signals(batch_index, metric=metric, metric_value=value, reference_metric=reference,
                    champion_version=champion)


def test_a_champion_beating_its_own_reference_batch_after_batch_retrains_from_the_first_of_them() -> None:
    """A champion validated mid-change (reference 0.65) that now scores 0.75 twice in a row is retrained on the settled data."""
    decision = decide(_beating(6), [_calm(4), _outgrown(5)], _settings())
    assert decision.action == "retrain"
    assert decision.window_start == 5
    assert decision.reasons == ["accuracy 0.750 vs champion's 0.650 (15.4% better > 10%) for 2 batches: "
                                "the champion was validated on data that has passed"]
    fired = {check.rule: check.fired for check in decision.checks}
    assert fired["outgrown reference"]
    assert fired["outgrown persistence"]
    assert not fired["performance"]


def test_one_batch_above_the_reference_waits_and_a_small_gain_is_no_signal() -> None:
    first = decide(_beating(6), [_calm(5)], _settings())
    assert first.action == "none"
    checks = {check.rule: check for check in first.checks}
    assert checks["outgrown reference"].fired
    assert not checks["outgrown persistence"].fired
    small = decide(_beating(6, value=0.70), [_outgrown(5)], _settings())  # 7.7 % better: within 10 %
    assert small.action == "none"
    assert not {c.rule: c for c in small.checks}["outgrown reference"].fired


def test_an_outgrown_reference_retrains_once_per_champion() -> None:
    """The gate kept the champion after one such retrain: it is not asked again every few batches."""
    history = [_outgrown(3, "retrain", due=True, window_start=2), _outgrown(4), _outgrown(5)]
    decision = decide(_beating(6), history, _settings())
    assert decision.action == "none"
    assert not {c.rule: c for c in decision.checks}["outgrown persistence"].fired
    # A retrain another rule asked for while the champion happened to beat its reference does not
    # use the allowance up.
    shifted = [PastCycle(3, "retrain", window_start=2, champion_version="3", outgrown=True), _outgrown(4), _outgrown(5)]
    assert decide(_beating(6), shifted, _settings()).action == "retrain"
    # A new champion (the retrain promoted, or a person did) starts over: the run counts its own batches.
    promoted = decide(_beating(7, champion="4"), [*history, _outgrown(6, champion="4")], _settings())
    assert promoted.action == "retrain"
    assert promoted.window_start == 6
    assert decide(_beating(7, champion="4"), [*history, _outgrown(6, champion="3")], _settings()).action == "none"


def test_an_outgrown_reference_reads_lower_as_better_for_rmse_and_can_be_disabled() -> None:
    signals = _beating(6, value=1.2, metric=RMSE, reference=1.5)
    assert decide(signals, [_outgrown(5)], _settings()).action == "retrain"
    worse = _beating(6, value=1.8, metric=RMSE, reference=1.5)
    assert decide(worse, [_outgrown(5)], _settings()).reasons[0].startswith("rmse 1.800 vs champion's 1.500 (20.0% worse")
    off = decide(signals, [_outgrown(5)], _settings(max_relative_gain=None))
    assert off.action == "none"
    assert "outgrown reference" not in {c.rule for c in off.checks}


def test_a_retrain_on_an_outgrown_reference_gets_no_follow_up() -> None:
    """Its window already spans a settled run of batches: widening it again two batches later would be a wasted retrain."""
    settings = _settings(followup_after_batches=2)
    signals = _signals(9, metric=ACCURACY, metric_value=0.87, reference_metric=0.88, champion_version="6")
    after_outgrown = [_outgrown(5, champion="5"), _outgrown(6, "retrain", champion="5", due=True, window_start=5),
                      _calm(7), _calm(8)]
    assert decide(signals, after_outgrown, settings, window_batches=3).action == "none"
    # A shift retrain on a batch where the gain check also fired still earns its follow-up.
    after_shift = [_calm(5), _outgrown(6, "retrain", champion="5", window_start=5), _calm(7), _calm(8)]
    decision = decide(signals, after_shift, settings, window_batches=3)
    assert decision.action == "retrain"
    assert decision.followup
    assert decision.window_start == 5


def test_a_late_label_measurement_does_not_count_as_an_outgrown_reference() -> None:
    """Late labels of one earlier batch are handed to every cycle until the next: they would count twice."""
    late = _signals(6, metric=ACCURACY, metric_value=0.75, reference_metric=0.65, champion_version="3",
                    metric_source="late labels of 'b04'", metric_batch_index=4)
    decision = decide(late, [_outgrown(5)], _settings())
    assert decision.action == "none"
    assert "outgrown reference" not in {c.rule for c in decision.checks}


# --- rejection streaks -----------------------------------------------------------------------
def _rejected(batch_index: int, *kinds: str) -> PastCycle:
    return PastCycle(batch_index, "reject_batch", name=f"b{batch_index}", rejected_by=kinds)


YEAR = "expect_column_values_to_be_between(year): 100.0% unexpected, allowed 50.0%"


def test_the_same_expectation_rejecting_three_batches_in_a_row_escalates_once() -> None:
    """The third rejection by the same expectation raises the alert and says what to do; the fourth counts on
    without a second alert; the observed figures in the reasons do not matter, only what rejected."""
    kind = "expect_column_values_to_be_between(year)"
    history: list[PastCycle] = [_calm(0, "init")]
    streaks = []
    for index in range(1, 5):
        decision = decide(_signals(index, valid=False, critical_failures=[YEAR], name=f"b{index}"), history,
                          _settings())
        assert decision.action == "reject_batch"
        streaks.append(decision.rejection_streak)
        history.append(_rejected(index, kind))
    assert streaks[0] is None
    assert [(s.batches, s.alert, s.since) for s in streaks[1:] if s] == [(2, False, "b1"), (3, True, "b1"),
                                                                          (4, False, "b1")]
    third = decide(_signals(3, valid=False, critical_failures=[YEAR], name="b3"), history[:3], _settings())
    assert third.reasons[-1].startswith(f"rejection streak: {kind} has rejected 3 batches in a row (since 'b1')")
    assert "retrainer requeue" in third.reasons[-1]


def test_an_accepted_batch_or_another_reason_ends_a_streak_and_the_limit_can_be_turned_off() -> None:
    kind = "expect_column_values_to_be_between(year)"
    broken = [_calm(0, "init"), _rejected(1, kind), _calm(2), _rejected(3, kind)]
    assert decide(_signals(4, valid=False, critical_failures=[YEAR]), broken, _settings()).rejection_streak.batches == 2
    other = [_calm(0, "init"), _rejected(1, "missing required column(s)"), _rejected(2, kind)]
    assert decide(_signals(3, valid=False, critical_failures=[YEAR]), other, _settings()).rejection_streak.batches == 2
    long = [_calm(0, "init"), *(_rejected(i, kind) for i in range(1, 6))]
    off = decide(_signals(6, valid=False, critical_failures=[YEAR]), long, _settings(rejection_streak_batches=None))
    assert off.rejection_streak is None
    assert off.reasons == [f"critical: {YEAR}"]


# --- a noisy reference ---------------------------------------------------------------------------
def test_a_drop_against_a_reference_measured_on_few_rows_is_judged_with_both_errors() -> None:
    """0.756 on 82 rows against a validation accuracy of 0.882 measured on 17 rows: 14 % worse at the point
    estimates, within the noise of both; the same drop against a reference of known precision retrains."""
    batch_se = (0.756 * 0.244 / 82) ** 0.5
    reference_se = (0.882 * 0.118 / 17) ** 0.5
    common = {"metric": ACCURACY, "metric_value": 0.756, "metric_std_error": batch_se, "reference_metric": 0.882}
    noisy = decide(_signals(6, **common, reference_std_error=reference_se), [_calm(0, "init")], _settings())
    assert noisy.action == "none"
    assert "within this batch's noise" in noisy.reasons[-1]
    assert decide(_signals(6, **common, reference_std_error=0.0), [_calm(0, "init")], _settings()).action == "retrain"


def test_an_outgrown_reference_is_judged_at_the_pessimistic_end_of_the_noise() -> None:
    """fair's b07-b08: 0.737 and 0.719 on 335 rows against 0.647 on 68 rows is no passed world."""
    def served(index: int, value: float, reference_se: float | None) -> Decision:
        history = [_calm(0, "init"), PastCycle(index - 1, "none", champion_version="1", outgrown=True)]
        return decide(_signals(index, metric=ACCURACY, metric_value=value, metric_std_error=0.024,
                               reference_metric=0.647, reference_std_error=reference_se, champion_version="1"),
                      history, _settings(max_relative_gain=0.10))
    assert served(8, 0.719, (0.647 * 0.353 / 68) ** 0.5).action == "none"
    assert served(8, 0.80, 0.01).action == "retrain"


def test_a_challenger_in_shadow_holds_a_retrain_back_until_its_verdict() -> None:
    """A drop that would retrain is held while a challenger answers it in shadow (a retrain would only replace
    it and restart its count); the hold is a named signal."""
    from retrainer.config import PolicySettings
    from retrainer.core.decision import Rule, Signals
    from retrainer.core.metrics import primary_metric
    from retrainer.core.policy import decide

    signals = Signals(batch_index=9, valid=True, metric=primary_metric("classification"), metric_value=0.60,
                      reference_metric=0.90, new_labelled_rows=5000,
                      in_shadow="challenger v3 is in shadow (1 of 2 labelled batches in)")
    held = decide(signals, [], PolicySettings())
    assert held.action == "none"
    assert held.reasons[-1] == "but challenger v3 is in shadow (1 of 2 labelled batches in): its verdict comes first"
    assert [c.rule for c in held.checks if c.fired][-1] == Rule.SHADOW
    free = decide(Signals(**{**signals.__dict__, "in_shadow": None}), [], PolicySettings())
    assert free.action == "retrain"
