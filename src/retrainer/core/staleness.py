"""Staleness (rule 2 of the policy, pure): how long the champion has served since it was last
*verified* against the present, and the age limits.

Verified: at its training (the end of its training data); on a batch whose own (or late) labels
showed its metric holding (the performance rule's own judgement, noise allowed for); when a gate kept
it against a challenger trained on fresh data. Ages are days on the stream's clock as each cycle
recorded them; the daily staleness check reads the wall clock and the registry's gate refusals.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrainer.config import PolicySettings
from retrainer.core.decision import PastCycle, Rule, SignalCheck, Signals
from retrainer.core.metrics import MetricSpec, combined_std_error, optimistic, relative_drop


def holds(metric: MetricSpec | None, reference: float | None, value: float | None, std_error: float | None,
          settings: PolicySettings, reference_std_error: float | None = None) -> bool:
    """Whether a measured metric shows the champion holding: the performance rule's own judgement (no drop
    beyond `max_relative_drop` once the batch's noise is allowed for) found nothing."""
    if metric is None or reference is None or value is None:
        return False
    best = optimistic(metric, value, combined_std_error(std_error, reference_std_error), settings.drop_confidence)
    return relative_drop(metric, reference, best) <= settings.max_relative_drop


def verified_at_age(champion_version: str | None, history: Sequence[PastCycle], metric: MetricSpec | None,
                    reference: float | None, settings: PolicySettings, reference_std_error: float | None = None
                    ) -> float:
    """The champion's age (days since its training data ended) when it was last verified against the
    present: 0 at its training; later, a batch where its measured metric held, or a retrain where the
    gate kept it. Ages are read on the stream's clock as each cycle recorded them."""
    ages = [past.champion_age_days for past in history
            if past.champion_version == champion_version and past.champion_age_days is not None
            and (past.gate_refused or holds(metric, reference, past.metric_value, past.metric_std_error, settings,
                                             reference_std_error))]
    return max(ages, default=0.0)


def unverified_days(age_days: float | None, champion_version: str | None, history: Sequence[PastCycle],
                    metric: MetricSpec | None, reference: float | None, settings: PolicySettings,
                    refused_days_ago: float | None = None, reference_std_error: float | None = None) -> float | None:
    """Days the champion has served since it was last verified (None when its age is unknown).
    `refused_days_ago`: days since the newest challenger a gate refused against it, as the registry
    remembers (a retrain the daily check asked for leaves no batch record): that verified it too."""
    if age_days is None:
        return None
    unverified = max(0.0, age_days - verified_at_age(champion_version, history, metric, reference, settings,
                                                     reference_std_error))
    return unverified if refused_days_ago is None else min(unverified, max(0.0, refused_days_ago))


def age_rules(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings
               ) -> tuple[list[SignalCheck], list[str]]:
    """The staleness rule (unverified for too long) and the hard age limit: their checks and reasons."""
    checks, reasons = [], []
    age = signals.champion_age_days
    unverified = unverified_days(age, signals.champion_version, history, signals.metric, signals.reference_metric,
                                 settings, reference_std_error=signals.reference_std_error)
    # This batch's own labels show the champion holding: it is verified now.
    if unverified is not None and signals.metric_batch_index is None and holds(
            signals.metric, signals.reference_metric, signals.metric_value, signals.metric_std_error, settings,
            signals.reference_std_error):
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
