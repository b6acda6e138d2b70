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
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from scipy import stats

from retrainer.config import PolicySettings
from retrainer.core.metrics import MetricSpec, relative_drop

Action = Literal["none", "retrain", "reject_batch"]


class Rule(StrEnum):
    """The rules' names, as each `SignalCheck` and the timeline's `signals` spell them: one spelling,
    shared by the policy that writes them and the code that reads a past cycle back."""

    VALIDATION = "validation"
    TRUST = "trust"
    STALENESS = "staleness"
    AGE_LIMIT = "age limit"
    PERFORMANCE = "performance"
    ESTIMATED_PERFORMANCE = "estimated performance"
    DRIFT = "drift"
    OUT_OF_DISTRIBUTION = "out-of-distribution"
    DRIFT_PERSISTENCE = "drift persistence"
    OUTGROWN_REFERENCE = "outgrown reference"
    OUTGROWN_PERSISTENCE = "outgrown persistence"
    FOLLOW_UP = "follow-up"
    COOL_DOWN = "cool-down"
    MINIMUM_LABELS = "minimum labels"


@dataclass(frozen=True)
class Signals:
    """What one cycle measured about one batch."""

    batch_index: int
    valid: bool
    critical_failures: Sequence[str] = ()
    drift_share: float | None = None
    drifted_features: Sequence[str] = ()
    metric: MetricSpec | None = None
    metric_value: float | None = None
    # Its standard error on the batch's labelled rows: a drop within the batch's own noise is not one.
    metric_std_error: float | None = None
    # Where metric_value was measured when not on this batch (late labels of an earlier batch):
    # its description and that batch's index, where a retrain's window then starts.
    metric_source: str | None = None
    metric_batch_index: int | None = None
    reference_metric: float | None = None
    # The champion's estimated metric from its calibrated confidence (when labels are missing).
    estimated_metric_value: float | None = None
    ood_share: float | None = None
    champion_age_days: float | None = None
    # The version serving this batch: an outgrown reference retrains once per champion.
    champion_version: str | None = None
    # Labelled rows accepted since the champion's training window, this batch included.
    new_labelled_rows: int = 0
    # Why the champion was refused before loading (see registry.trust): nothing was scored.
    champion_refused: str | None = None


@dataclass(frozen=True)
class PastCycle:
    """What the policy needs to remember about an earlier cycle."""

    batch_index: int
    decision: str
    # Dataset drift or too many out-of-distribution rows: what the hysteresis counts.
    dataset_drift: bool = False
    # For retrains: the first batch trained on, and whether it was a follow-up retrain.
    window_start: int | None = None
    followup: bool = False
    # The batch's name, for reasons a person reads.
    name: str = ""
    # The version that served the batch; whether its metric, measured on the batch's own labels,
    # beat its own reference by more than max_relative_gain there (what the outgrown-reference
    # rule counts); and whether that rule was due there (a retrain it asked for).
    champion_version: str | None = None
    outgrown: bool = False
    outgrown_due: bool = False
    # The champion's age there (days since its training data ended, on the batch's clock), its
    # metric there (own or late labels), and whether a retrain there was refused by the gate: what
    # the staleness rule counts as verification of that champion.
    champion_age_days: float | None = None
    metric_value: float | None = None
    metric_std_error: float | None = None
    gate_refused: bool = False


@dataclass(frozen=True)
class SignalCheck:
    """One rule's input as the decision record shows it: the signal, its value, its threshold,
    and whether the rule fired (a trigger fired, or a guard such as the cool-down held back)."""

    # A `Rule` when the policy writes it; a plain string when read back from a journal.
    rule: str
    signal: str
    value: float | None
    threshold: float | None
    fired: bool


@dataclass(frozen=True)
class Decision:
    """What the policy decided about one batch, why, and the checks it made on the way."""

    action: Action
    reasons: list[str] = field(default_factory=list)
    # First batch of the change that fired: the narrow training window starts there, so a
    # challenger need not learn the world the champion already failed in (the full window is
    # tried beside it when training.compare_full_window is on).
    window_start: int | None = None
    dataset_drift: bool = False
    # A shift (dataset drift or out-of-distribution rows) was seen: the hysteresis counts it.
    shifted: bool = field(default=False, compare=False)
    followup: bool = False
    # The evidence, not the verdict: two decisions are the same decision whatever they report.
    checks: list[SignalCheck] = field(default_factory=list, compare=False)

    def training_start(self) -> int:
        """First batch a challenger may train on: the change's first batch; with no change seen
        (staleness), any — the training window's own size applies."""
        return self.window_start if self.window_start is not None else 0


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


def _holds(metric: MetricSpec | None, reference: float | None, value: float | None, std_error: float | None,
           settings: PolicySettings) -> bool:
    """Whether a measured metric shows the champion holding: the performance rule's own judgement (no drop
    beyond `max_relative_drop` once the batch's noise is allowed for) found nothing."""
    if metric is None or reference is None or value is None:
        return False
    optimistic = _optimistic(metric, value, std_error, settings.drop_confidence)
    return relative_drop(metric, reference, optimistic) <= settings.max_relative_drop


def verified_at_age(champion_version: str | None, history: Sequence[PastCycle], metric: MetricSpec | None,
                    reference: float | None, settings: PolicySettings) -> float:
    """The champion's age (days since its training data ended) when it was last verified against the
    present: 0 at its training; later, a batch where its measured metric held, or a retrain where the
    gate kept it. Ages are read on the stream's clock as each cycle recorded them."""
    ages = [past.champion_age_days for past in history
            if past.champion_version == champion_version and past.champion_age_days is not None
            and (past.gate_refused or _holds(metric, reference, past.metric_value, past.metric_std_error, settings))]
    return max(ages, default=0.0)


def unverified_days(age_days: float | None, champion_version: str | None, history: Sequence[PastCycle],
                    metric: MetricSpec | None, reference: float | None, settings: PolicySettings) -> float | None:
    """Days the champion has served since it was last verified (None when its age is unknown)."""
    if age_days is None:
        return None
    return max(0.0, age_days - verified_at_age(champion_version, history, metric, reference, settings))


def _age_rules(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings
               ) -> tuple[list[SignalCheck], list[str]]:
    """The staleness rule (unverified for too long) and the hard age limit: their checks and reasons."""
    checks, reasons = [], []
    age = signals.champion_age_days
    unverified = unverified_days(age, signals.champion_version, history, signals.metric, signals.reference_metric,
                                 settings)
    # This batch's own labels show the champion holding: it is verified now.
    if unverified is not None and signals.metric_batch_index is None and _holds(
            signals.metric, signals.reference_metric, signals.metric_value, signals.metric_std_error, settings):
        unverified = 0.0
    limit = settings.max_champion_age_days
    stale = limit is not None and unverified is not None and unverified > limit
    checks.append(SignalCheck(Rule.STALENESS, "unverified_days", unverified, limit, stale))
    if stale and age is not None and unverified is not None and limit is not None:
        reasons.append(staleness_reason(age, unverified, limit))
    hard = settings.retrain_every_days
    if hard is not None:
        # Once per period: a retrain asked for under this champion less than a period ago answered it.
        last = max((past.champion_age_days for past in history
                    if past.decision == "retrain" and past.champion_version == signals.champion_version
                    and past.champion_age_days is not None), default=0.0)
        due = age is not None and age > hard and age - last > hard
        checks.append(SignalCheck(Rule.AGE_LIMIT, "champion_age_days", age, hard, due))
        if due:
            reasons.append(f"champion age {age:.1f} d > the hard limit of {hard:g} d (policy.retrain_every_days)")
    return checks, reasons


def staleness_reason(age: float, unverified: float, limit: float) -> str:
    """The staleness rule's reason, as a person reads it."""
    return f"champion age {age:.1f} d, unverified for {unverified:.1f} d > {limit:g} d"


def _noise_margin(std_error: float, confidence: float) -> float:
    """How far one batch's metric may fall short of the model's true one by chance, at `confidence` (one-sided)."""
    return float(stats.norm.ppf(confidence)) * std_error


def _optimistic(metric: MetricSpec, value: float, std_error: float | None, confidence: float) -> float:
    """The best the champion's metric may really be, at `confidence` (one-sided), given this batch's noise."""
    if std_error is None:
        return value
    margin = _noise_margin(std_error, confidence)
    return value + margin if metric.higher_is_better else value - margin


def _performance_check(rule: Rule, signal: str, metric: MetricSpec | None, value: float | None,
                       reference: float | None, tolerance: float | None, std_error: float | None = None,
                       confidence: float = 0.5) -> tuple[SignalCheck, str | None]:
    """A metric against the champion's own validation metric: the check, and the reason if it fired.
    With the measurement's standard error, the drop is the one still seen at the optimistic end of its
    one-sided `confidence` interval (the check's value): a small batch's bad luck does not retrain."""
    drop = None
    if metric is not None and value is not None and reference is not None:
        drop = relative_drop(metric, reference, _optimistic(metric, value, std_error, confidence))
    fired = drop is not None and tolerance is not None and drop > tolerance
    check = SignalCheck(rule, signal, drop, tolerance, fired)
    if not fired or metric is None or value is None or reference is None or tolerance is None:
        return check, None
    label = metric.name if rule == Rule.PERFORMANCE else f"estimated {metric.name}"
    return check, (f"{label} {value:.3f} vs champion's {reference:.3f} "
                   f"({drop:.1%} worse > {tolerance:.0%})")


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
    outgrown = gain > limit
    checks = [SignalCheck(Rule.OUTGROWN_REFERENCE, "relative_metric_gain", gain, limit, outgrown)]
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


def decide(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings,  # noqa: C901 (rules in order)
           window_batches: int | None = None) -> Decision:
    """The action for one batch. `window_batches` is the training window's size in batches
    (TrainingSettings.window_batches): a retrain on fewer earns a follow-up (rule 5)."""
    critical = SignalCheck(Rule.VALIDATION, "critical_failures", float(len(signals.critical_failures)), 0.0,
                           not signals.valid)
    if not signals.valid:
        return Decision("reject_batch", [f"critical: {failure}" for failure in signals.critical_failures],
                        checks=[critical])
    if signals.champion_refused is not None:
        # No retrain either: whether a tampered registry gets a fresh champion is a person's call
        # (`retrainer rollback` / `promote`); the accepted batch waits in the store for the next window.
        return Decision("none", [f"champion refused: {signals.champion_refused}"],
                        checks=[critical, SignalCheck(Rule.TRUST, "champion_refused", 1.0, 0.0, True)])

    checks = [critical]
    triggers: list[str] = []
    # No change seen: no reason to narrow the window (the training window's own size applies).
    window_start: int | None = None

    age_checks, age_reasons = _age_rules(signals, history, settings)
    checks.extend(age_checks)
    triggers.extend(age_reasons)

    measured, reason = _performance_check(Rule.PERFORMANCE, "relative_metric_drop", signals.metric,
                                          signals.metric_value, signals.reference_metric, settings.max_relative_drop,
                                          signals.metric_std_error, settings.drop_confidence)
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
        drop = relative_drop(signals.metric, signals.reference_metric, signals.metric_value)
        if drop > settings.max_relative_drop:
            margin = _noise_margin(signals.metric_std_error, settings.drop_confidence)
            reasons.append(f"{signals.metric.name} {signals.metric_value:.3f} vs champion's "
                           f"{signals.reference_metric:.3f} ({drop:.1%} worse), within this batch's noise "
                           f"(±{margin:.3f} at {settings.drop_confidence:.0%} confidence)")
    if out_of_distribution:
        reasons.append(
            f"ood_share {signals.ood_share:.2f} > {settings.max_ood_share:.2f}, "
            f"waiting for {settings.drift_persistence_batches} batches or a performance drop"
        )
    return reasons


def staleness_retrain(age_days: float | None, unverified: float | None, new_labelled_rows: int,
                      settings: PolicySettings) -> str | None:
    """Why the daily staleness check asks for a retrain, or None. It looks at the wall clock, for a
    landing location that went quiet (a batch's own cycle applies rule 2 on the batch's clock):
    `age_days` since the champion's training data ended, `unverified` since it was last verified
    (`unverified_days`). Like any retrain it needs `min_new_labelled_rows` new labels to learn from."""
    if new_labelled_rows < settings.min_new_labelled_rows:
        return None
    limit, hard = settings.max_champion_age_days, settings.retrain_every_days
    if limit is not None and age_days is not None and unverified is not None and unverified > limit:
        return f"{staleness_reason(age_days, unverified, limit)} (staleness check)"
    if hard is not None and age_days is not None and age_days > hard:
        return f"champion age {age_days:.1f} d > the hard limit of {hard:g} d (staleness check)"
    return None
