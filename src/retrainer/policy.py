"""The retraining decision: pure, plain data in, an action with its reasons out.

Rules, in order of precedence:
1. a batch that failed a critical expectation is rejected (it is never trained on);
2. staleness: a champion older than ``max_champion_age_days`` is retrained;
3. performance: a measured metric worse than the champion's own validation metric by more
   than ``max_relative_drop`` retrains at once (it confirms whatever drift there is);
4. drift alone retrains only when dataset drift persisted ``drift_persistence_batches``
   batches in a row — hysteresis, so one noisy batch does not cause a retrain.
Whatever fired, no retrain happens within ``cooldown_batches`` of the last one (the first
champion counts): a gate that keeps failing, or a manual promotion still waiting, must not
turn every batch into a retrain. A retrain also needs ``min_new_labelled_rows`` labelled rows
in the batch, since a challenger is trained and judged on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from retrainer.config import PolicySettings
from retrainer.metrics import MetricSpec, relative_drop

Action = Literal["none", "retrain", "reject_batch"]


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
    reference_metric: float | None = None
    champion_age_days: float | None = None
    labelled_rows: int = 0


@dataclass(frozen=True)
class PastCycle:
    """What the policy needs to remember about an earlier cycle."""

    batch_index: int
    decision: str
    dataset_drift: bool = False


@dataclass(frozen=True)
class SignalCheck:
    """One rule's input as the decision record shows it: the signal, its value, its threshold,
    and whether the rule fired (a trigger fired, or a guard such as the cool-down held back)."""

    rule: str
    signal: str
    value: float | None
    threshold: float | None
    fired: bool


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str] = field(default_factory=list)
    # First batch of the change that fired: the training window starts no earlier,
    # so a challenger does not learn the world the champion already failed in.
    window_start: int | None = None
    dataset_drift: bool = False
    # The evidence, not the verdict: two decisions are the same decision whatever they report.
    checks: list[SignalCheck] = field(default_factory=list, compare=False)

    def training_start(self, index: int) -> int:
        """First batch a challenger may train on: the change's first batch, else the current one."""
        return self.window_start if self.window_start is not None else index


def _drift_run(history: Sequence[PastCycle]) -> list[PastCycle]:
    """The trailing run of consecutive accepted cycles with dataset drift (rejections skipped)."""
    run: list[PastCycle] = []
    for past in reversed(history):
        if past.decision == "reject_batch":
            continue
        if not past.dataset_drift or past.decision in ("retrain", "init"):
            break
        run.append(past)
    return run


def _batches_since_retrain(signals: Signals, history: Sequence[PastCycle]) -> int | None:
    for past in reversed(history):
        if past.decision in ("retrain", "init"):
            return signals.batch_index - past.batch_index
    return None


def decide(signals: Signals, history: Sequence[PastCycle], settings: PolicySettings) -> Decision:
    critical = SignalCheck("validation", "critical_failures", float(len(signals.critical_failures)), 0.0,
                           not signals.valid)
    if not signals.valid:
        return Decision("reject_batch", [f"critical: {failure}" for failure in signals.critical_failures],
                        checks=[critical])

    dataset_drift = signals.drift_share is not None and signals.drift_share > settings.drift_share_threshold
    triggers: list[str] = []
    window_start = signals.batch_index
    checks = [critical]

    stale = (settings.max_champion_age_days is not None and signals.champion_age_days is not None
             and signals.champion_age_days > settings.max_champion_age_days)
    checks.append(SignalCheck("staleness", "champion_age_days", signals.champion_age_days,
                              settings.max_champion_age_days, stale))
    if stale:
        triggers.append(f"champion age {signals.champion_age_days:.1f} d > {settings.max_champion_age_days:g} d")

    drop = None
    if signals.metric is not None and signals.metric_value is not None and signals.reference_metric is not None:
        drop = relative_drop(signals.metric, signals.reference_metric, signals.metric_value)
    dropped = drop is not None and drop > settings.max_relative_drop
    checks.append(SignalCheck("performance", "relative_metric_drop", drop, settings.max_relative_drop, dropped))
    if dropped and signals.metric and signals.metric_value is not None and signals.reference_metric is not None:
        triggers.append(
            f"{signals.metric.name} {signals.metric_value:.3f} vs champion's {signals.reference_metric:.3f} "
            f"({drop:.1%} worse > {settings.max_relative_drop:.0%})"
        )

    checks.append(SignalCheck("drift", "drift_share", signals.drift_share, settings.drift_share_threshold,
                              dataset_drift))
    run = _drift_run(history) if dataset_drift else []
    persisted = len(run) + 1
    if dataset_drift:
        checks.append(SignalCheck("drift persistence", "drifted_batches_in_a_row", float(persisted),
                                  float(settings.drift_persistence_batches),
                                  persisted >= settings.drift_persistence_batches))
    if dataset_drift and not triggers:
        if persisted >= settings.drift_persistence_batches:
            share = signals.drift_share or 0.0
            triggers.append(
                f"drift_share {share:.2f} > {settings.drift_share_threshold:.2f} for {persisted} batches"
            )
            window_start = run[-1].batch_index if run else signals.batch_index

    if not triggers:
        return Decision("none", _quiet_reasons(signals, dataset_drift, settings), dataset_drift=dataset_drift,
                        checks=checks)
    since_retrain = _batches_since_retrain(signals, history)
    cooling = since_retrain is not None and since_retrain <= settings.cooldown_batches
    checks.append(SignalCheck("cool-down", "batches_since_retrain",
                              None if since_retrain is None else float(since_retrain),
                              float(settings.cooldown_batches), cooling))
    if cooling:
        return Decision(
            "none",
            triggers + [f"but in cool-down: {since_retrain} batch(es) since the last retrain "
                        f"<= {settings.cooldown_batches}"],
            dataset_drift=dataset_drift, checks=checks,
        )
    too_few = signals.labelled_rows < settings.min_new_labelled_rows
    checks.append(SignalCheck("minimum labels", "labelled_rows", float(signals.labelled_rows),
                              float(settings.min_new_labelled_rows), too_few))
    if too_few:
        return Decision(
            "none",
            triggers + [f"but only {signals.labelled_rows} labelled rows < {settings.min_new_labelled_rows}"],
            dataset_drift=dataset_drift, checks=checks,
        )
    return Decision("retrain", triggers, window_start=window_start, dataset_drift=dataset_drift, checks=checks)


def _quiet_reasons(signals: Signals, dataset_drift: bool, settings: PolicySettings) -> list[str]:
    """Why nothing fired, when something was close: a drift seen but not yet persistent."""
    if dataset_drift:
        return [
            f"drift_share {signals.drift_share:.2f} > {settings.drift_share_threshold:.2f}, "
            f"waiting for {settings.drift_persistence_batches} batches or a performance drop"
        ]
    if signals.drifted_features:
        return [f"drift in {', '.join(signals.drifted_features)} (share {signals.drift_share or 0:.2f}, below the dataset drift threshold)"]
    return []
