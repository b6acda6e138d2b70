"""The retraining decision: pure, plain data in, an action with its reasons out.

Rules, in order of precedence:
1. a batch that failed a critical expectation is rejected (it is never trained on);
2. staleness: a champion not *verified* against the present for more than
   ``max_champion_age_days`` is retrained. Age counts on the stream's clock from the last
   verification: its training (the end of its training data), a batch whose own labels (or late
   labels) showed its metric holding (no drop beyond ``max_relative_drop``), or a retrain whose gate
   kept it (a challenger trained on fresh data was no better). So a labelled stream that does not
   change never retrains on age, and a refused staleness retrain is not asked again until another
   limit has passed. A hard limit, ``retrain_every_days`` (off by default), retrains whatever the
   verification, at most once per period (a compliance rule: "retrain at least every N days");
3. performance: a measured metric worse than the champion's own validation metric by more
   than ``max_relative_drop`` retrains at once (it confirms whatever drift there is). Without
   labels, the *estimated* metric (calibrated confidence) plays the same part, with
   ``max_estimated_drop``;
4. shift alone — dataset drift (``drift_share_threshold``) or a share of out-of-distribution
   rows above ``max_ood_share`` — retrains only when it persisted
   ``drift_persistence_batches`` batches in a row: hysteresis, so one noisy batch does not
   cause a retrain. An outgrown reference counts the same way: a measured metric *better* than
   the champion's validation metric by more than ``max_relative_gain``, batch after batch, says
   the champion was validated on a world that has passed — typically one trained in the middle of
   a gradual change, whose low reference hides that a model of the settled concept would do much
   better. It retrains once per champion: when the gate keeps that champion, the world did not
   offer a better one;
5. follow-up: a retrain triggered by a change trains on data since the change only, which may
   be a single batch. Once ``followup_after_batches`` more accepted batches of the new regime
   arrived, one follow-up retrain on the wider window gives the gate a better-fed challenger.
Whatever fired, no retrain happens within ``cooldown_batches`` of the last one (the first
champion counts): a gate that keeps failing, or a manual promotion still waiting, must not
turn every batch into a retrain. A retrain also needs ``min_new_labelled_rows`` labelled rows
that arrived since the champion's training window, since a challenger is trained and judged
on them.

The training window follows the decision (``Decision.window_start``): from the first batch of
the change that fired. That is the narrow candidate; with ``training.compare_full_window`` the
retrain also trains on the full window and the holdout picks (a covariate shift leaves the old
batches' concept intact, a concept change does not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from retrainer.config import PolicySettings
from retrainer.core.decision import (
    Decision,
    PastCycle,
    RejectionStreak,
    Rule,
    SignalCheck,
    Signals,
    failure_kind,
)
from retrainer.core.metrics import MetricSpec, combined_std_error, noise_margin, optimistic, pessimistic, relative_drop
from retrainer.core.staleness import age_rules


def _trailing_run(history: Sequence[PastCycle], seen: Callable[[PastCycle], bool]) -> list[PastCycle]:
    """The trailing run of consecutive accepted cycles where `seen` holds (rejections skipped),
    back to the last retrain: a retrain starts the count over."""
    run: list[PastCycle] = []
    for past in reversed(history):
        if past.decision == "reject_batch":
            continue
        if not seen(past) or past.decision in ("retrain", "init"):
            break
        run.append(past)
    return run


def _shift_run(history: Sequence[PastCycle]) -> list[PastCycle]:
    return _trailing_run(history, lambda past: past.dataset_drift)


def _last_retrain(history: Sequence[PastCycle]) -> PastCycle | None:
    return next((past for past in reversed(history) if past.decision in ("retrain", "init")), None)


def _accepted_since(history: Sequence[PastCycle], index: int) -> int:
    return sum(past.batch_index > index and past.decision != "reject_batch" for past in history)


def _followup_window(history: Sequence[PastCycle], settings: PolicySettings, window_batches: int) -> int | None:
    """Where a follow-up retrain would start (the last retrain's change point), when one is due.

    Due once per change: the last retrain was triggered by a change, trained on fewer batches
    than a full window, and ``followup_after_batches`` accepted batches (this one included)
    arrived since.
    """
    if settings.followup_after_batches is None:
        return None
    last = _last_retrain(history)
    # A retrain on an outgrown reference needs none: the regime had settled for a persistence run
    # before it, so its window is already as wide as a follow-up's would be.
    if (last is None or last.decision != "retrain" or last.followup or last.outgrown_due
            or last.window_start is None):
        return None
    if last.batch_index - last.window_start + 1 >= window_batches:
        return None
    if _accepted_since(history, last.batch_index) + 1 < settings.followup_after_batches:
        return None
    return last.window_start


def _performance_check(rule: Rule, signal: str, metric: MetricSpec | None, value: float | None,
                       reference: float | None, tolerance: float | None, std_error: float | None = None,
                       confidence: float = 0.5) -> tuple[SignalCheck, str | None]:
    """A metric against the champion's own validation metric: the check, and the reason if it fired.
    With the measurement's standard error, the drop is the one still seen at the optimistic end of its
    one-sided `confidence` interval (the check's value): a small batch's bad luck does not retrain."""
    drop = None
    if metric is not None and value is not None and reference is not None:
        drop = relative_drop(metric, reference, optimistic(metric, value, std_error, confidence))
    fired = drop is not None and tolerance is not None and drop > tolerance
    check = SignalCheck(rule, signal, drop, tolerance, fired)
    if not fired or metric is None or value is None or reference is None or tolerance is None:
        return check, None
    label = metric.name if rule == Rule.PERFORMANCE else f"estimated {metric.name}"
    # The drop as measured; with noise known, also what is left of it beyond the noise (what fired).
    raw = relative_drop(metric, reference, value)
    beyond = "" if std_error is None or drop is None else f", {drop:.1%} beyond the noise"
    return check, (f"{label} {value:.3f} vs champion's {reference:.3f} "
                   f"({raw:.1%} worse{beyond} > {tolerance:.0%})")


def _outgrown_reference(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings
                        ) -> tuple[list[SignalCheck], str | None, int | None]:
    """The outgrown-reference rule: its checks (did this batch beat the champion's reference by more
    than `max_relative_gain`, for how many batches) and, when that persisted and this champion has
    not been retrained for it yet, the reason to retrain and where the window starts (the run's
    first batch)."""
    limit = settings.max_relative_gain
    # Only a batch measured on its own labels counts: a late-labelled measurement of an earlier
    # batch is handed to every cycle until the next one, and would count once per cycle.
    if (limit is None or signals.metric is None or signals.metric_value is None or signals.reference_metric is None
            or signals.metric_batch_index is not None):
        return [], None, None
    gain = -relative_drop(signals.metric, signals.reference_metric, signals.metric_value)
    # Judged at the pessimistic end of the noise, as drops are at the optimistic one: one batch's luck
    # against a reference measured on a few dozen rows is not a world that has passed.
    noise = combined_std_error(signals.metric_std_error, signals.reference_std_error)
    sure_gain = -relative_drop(signals.metric, signals.reference_metric,
                               pessimistic(signals.metric, signals.metric_value, noise, settings.drop_confidence))
    outgrown = sure_gain > limit
    checks = [SignalCheck(Rule.OUTGROWN_REFERENCE, "relative_metric_gain", sure_gain, limit, outgrown)]
    if not outgrown:
        return checks, None, None
    champion = signals.champion_version
    run = _trailing_run(history, lambda past: past.outgrown and past.champion_version == champion)
    persisted = len(run) + 1
    # A retrain already asked for on this champion's outgrown reference, and the gate kept it: no
    # better model was on offer, and asking again every few batches would be a slow retrain storm.
    retried = any(past.decision == "retrain" and past.outgrown_due and past.champion_version == champion
                  for past in history)
    due = persisted >= settings.drift_persistence_batches and not retried
    checks.append(SignalCheck(Rule.OUTGROWN_PERSISTENCE, "outgrown_batches_in_a_row", float(persisted),
                              float(settings.drift_persistence_batches), due))
    if not due:
        return checks, None, None
    reason = (f"{signals.metric.name} {signals.metric_value:.3f} vs champion's {signals.reference_metric:.3f} "
              f"({gain:.1%} better > {limit:.0%}) for {persisted} batches: the champion was validated on "
              "data that has passed")
    return checks, reason, run[-1].batch_index if run else signals.batch_index


def _rejection(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings, critical: SignalCheck
               ) -> Decision:
    """Rule 1, and its escalation: the same reason rejecting batch after batch means a broken upstream or
    a suite that has become wrong, and either way a person must be told what to do."""
    reasons = [f"critical: {failure}" for failure in signals.critical_failures]
    limit = settings.rejection_streak_batches
    streak = rejection_streak(signals, history)
    if limit is None or streak is None:
        return Decision("reject_batch", reasons, checks=[critical])
    reached = streak.batches >= limit
    checks = [critical, SignalCheck(Rule.REJECTION_STREAK, "rejected_batches_in_a_row", float(streak.batches),
                                    float(limit), reached)]
    if not reached:
        # Counted on the record from the second batch on (dashboards see it grow), told at the limit.
        return Decision("reject_batch", reasons, checks=checks,
                        rejection_streak=streak if streak.batches > 1 else None)
    reasons.append(
        f"rejection streak: {streak.kind} has rejected {streak.batches} batches in a row (since '{streak.since}'): "
        "a broken upstream export, or a suite that no longer fits the data. If the data is right, edit the suite "
        "(`retrainer suite check` previews the edit), then `retrainer requeue` re-runs the quarantined batches; "
        "if not, fix the export upstream")
    return Decision("reject_batch", reasons, checks=checks,
                    rejection_streak=RejectionStreak(streak.kind, streak.batches, streak.since,
                                                     alert=streak.batches == limit))


def rejection_streak(signals: Signals, history: Sequence[PastCycle]) -> RejectionStreak | None:
    """The longest run of batches, ending with this one, rejected for one same kind of reason (None when
    this batch is not rejected). Any other outcome between them ends a run."""
    kinds = {failure_kind(failure) for failure in signals.critical_failures}
    best: RejectionStreak | None = None
    for kind in sorted(kinds):
        run = 1
        since = signals.name
        for past in reversed(history):
            if past.decision != "reject_batch" or kind not in past.rejected_by:
                break
            run += 1
            since = past.name or f"#{past.batch_index}"
        if best is None or run > best.batches:
            best = RejectionStreak(kind, run, since)
    return best


def decide(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings,  # noqa: C901 (rules in order)
           window_batches: int | None = None) -> Decision:
    """The action for one batch. `window_batches` is the training window's size in batches
    (TrainingSettings.window_batches): a retrain on fewer earns a follow-up (rule 5)."""
    critical = SignalCheck(Rule.VALIDATION, "critical_failures", float(len(signals.critical_failures)), 0.0,
                           not signals.valid)
    if not signals.valid:
        return _rejection(signals, history, settings, critical)
    if signals.champion_refused is not None:
        # No retrain either: whether a tampered registry gets a fresh champion is a person's call
        # (`retrainer rollback` / `promote`); the accepted batch waits in the store for the next window.
        return Decision("none", [f"champion refused: {signals.champion_refused}"],
                        checks=[critical, SignalCheck(Rule.TRUST, "champion_refused", 1.0, 0.0, True)])

    checks = [critical]
    triggers: list[str] = []
    # No change seen: no reason to narrow the window (the training window's own size applies).
    window_start: int | None = None

    age_checks, age_reasons = age_rules(signals, history, settings)
    checks.extend(age_checks)
    triggers.extend(age_reasons)

    measured, reason = _performance_check(Rule.PERFORMANCE, "relative_metric_drop", signals.metric,
                                          signals.metric_value, signals.reference_metric, settings.max_relative_drop,
                                          combined_std_error(signals.metric_std_error, signals.reference_std_error),
                                          settings.drop_confidence)
    checks.append(measured)
    if reason:
        triggers.append(reason if signals.metric_source is None else f"{reason} on {signals.metric_source}")
        window_start = signals.batch_index if signals.metric_batch_index is None else signals.metric_batch_index
    if signals.metric_value is None and signals.estimated_metric_value is not None:
        # Labels are late or absent: the calibrated estimate stands in for the measured metric.
        estimated, reason = _performance_check(
            Rule.ESTIMATED_PERFORMANCE, "estimated_relative_metric_drop", signals.metric,
            signals.estimated_metric_value, signals.reference_metric, settings.max_estimated_drop)
        checks.append(estimated)
        if reason:
            # Not narrowed: this batch has no labels to train on, and no labels say where the
            # change began.
            triggers.append(reason)

    dataset_drift = signals.drift_share is not None and signals.drift_share > settings.drift_share_threshold
    checks.append(SignalCheck(Rule.DRIFT, "drift_share", signals.drift_share, settings.drift_share_threshold,
                              dataset_drift))
    out_of_distribution = (settings.max_ood_share is not None and signals.ood_share is not None
                           and signals.ood_share > settings.max_ood_share)
    if signals.ood_share is not None:
        checks.append(SignalCheck(Rule.OUT_OF_DISTRIBUTION, "ood_share", signals.ood_share, settings.max_ood_share,
                                  out_of_distribution))
    shifted = dataset_drift or out_of_distribution
    run = _shift_run(history) if shifted else []
    persisted = len(run) + 1
    if shifted:
        checks.append(SignalCheck(Rule.DRIFT_PERSISTENCE, "shifted_batches_in_a_row", float(persisted),
                                  float(settings.drift_persistence_batches),
                                  persisted >= settings.drift_persistence_batches))
    # A persistent shift is named even beside staleness, and then it narrows the window to the
    # shift's start; a performance drop overrides it (the window starts where the drop showed).
    if shifted and window_start is None and persisted >= settings.drift_persistence_batches:
        what = []
        if dataset_drift:
            what.append(f"drift_share {signals.drift_share or 0:.2f} > {settings.drift_share_threshold:.2f}")
        if out_of_distribution:
            what.append(f"ood_share {signals.ood_share or 0:.2f} > {settings.max_ood_share or 0:.2f}")
        triggers.append(f"{' and '.join(what)} for {persisted} batches")
        window_start = run[-1].batch_index if run else signals.batch_index

    outgrown_checks, outgrown_reason, outgrown_start = _outgrown_reference(signals, history, settings)
    checks.extend(outgrown_checks)
    if outgrown_reason is not None:
        triggers.append(outgrown_reason)
        if window_start is None:
            window_start = outgrown_start

    followup = False
    if not triggers and window_batches is not None:
        start = _followup_window(history, settings, window_batches)
        if start is not None:
            followup = True
            window_start = start
            since = next((past.name for past in history if past.batch_index == start and past.name), f"#{start}")
            triggers.append(f"follow-up: {settings.followup_after_batches} batches of the new regime since "
                            f"the change at '{since}'; widening the training window")
        if settings.followup_after_batches is not None:
            checks.append(SignalCheck(Rule.FOLLOW_UP, "followup_due", float(followup), 1.0, followup))

    if not triggers:
        return Decision("none", _quiet_reasons(signals, dataset_drift, out_of_distribution, settings),
                        dataset_drift=dataset_drift, shifted=shifted, checks=checks)
    last = _last_retrain(history)
    since_retrain = None if last is None else signals.batch_index - last.batch_index
    cooling = since_retrain is not None and since_retrain <= settings.cooldown_batches
    checks.append(SignalCheck(Rule.COOL_DOWN, "batches_since_retrain",
                              None if since_retrain is None else float(since_retrain),
                              float(settings.cooldown_batches), cooling))
    if cooling:
        return Decision(
            "none",
            triggers + [f"but in cool-down: {since_retrain} batch(es) since the last retrain "
                        f"<= {settings.cooldown_batches}"],
            dataset_drift=dataset_drift, shifted=shifted, checks=checks,
        )
    # A challenger already answers the change, in shadow: a retrain now would only replace it and restart
    # its count, so that no challenger ever finished one while the champion kept failing.
    if signals.in_shadow is not None:
        checks.append(SignalCheck(Rule.SHADOW, "challenger_in_shadow", 1.0, 0.0, True))
        return Decision("none", triggers + [f"but {signals.in_shadow}: its verdict comes first"],
                        dataset_drift=dataset_drift, shifted=shifted, checks=checks)
    too_few = signals.new_labelled_rows < settings.min_new_labelled_rows
    checks.append(SignalCheck(Rule.MINIMUM_LABELS, "new_labelled_rows", float(signals.new_labelled_rows),
                              float(settings.min_new_labelled_rows), too_few))
    if too_few:
        return Decision(
            "none",
            triggers + [f"but only {signals.new_labelled_rows} new labelled rows since the champion's "
                        f"training window < {settings.min_new_labelled_rows}"],
            dataset_drift=dataset_drift, shifted=shifted, checks=checks,
        )
    return Decision("retrain", triggers, window_start=window_start, dataset_drift=dataset_drift, shifted=shifted,
                    followup=followup, checks=checks)


def _quiet_reasons(signals: Signals, dataset_drift: bool, out_of_distribution: bool,
                   settings: PolicySettings) -> list[str]:
    """Why nothing fired, when something was close: a shift seen but not yet persistent."""
    reasons = []
    if dataset_drift:
        reasons.append(
            f"drift_share {signals.drift_share:.2f} > {settings.drift_share_threshold:.2f}, "
            f"waiting for {settings.drift_persistence_batches} batches or a performance drop"
        )
    elif signals.drifted_features:
        reasons.append(f"drift in {', '.join(signals.drifted_features)} (share {signals.drift_share or 0:.2f}, "
                       "below the dataset drift threshold)")
    if (signals.metric is not None and signals.metric_value is not None and signals.reference_metric is not None
            and signals.metric_std_error is not None):
        noise = combined_std_error(signals.metric_std_error, signals.reference_std_error) or 0.0
        drop = relative_drop(signals.metric, signals.reference_metric, signals.metric_value)
        if drop > settings.max_relative_drop:
            margin = noise_margin(noise, settings.drop_confidence)
            reasons.append(f"{signals.metric.name} {signals.metric_value:.3f} vs champion's "
                           f"{signals.reference_metric:.3f} ({drop:.1%} worse), within this batch's noise "
                           f"(±{margin:.3f} at {settings.drop_confidence:.0%} confidence)")
    if out_of_distribution:
        reasons.append(
            f"ood_share {signals.ood_share:.2f} > {settings.max_ood_share:.2f}, "
            f"waiting for {settings.drift_persistence_batches} batches or a performance drop"
        )
    return reasons
