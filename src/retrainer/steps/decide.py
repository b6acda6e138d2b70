"""The decision of a cycle, and the staleness check: gathers the signals, `core.policy` decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from retrainer.core import policy, staleness
from retrainer.core.decision import Decision, Signals
from retrainer.core.records import BatchRecord, labelled_since_champion, late_measurement, open_shadow
from retrainer.core.schema import (
    BatchSchema,
    parse_times,
)
from retrainer.core.training import latest_window
from retrainer.monitoring import (
    DriftResult,
    OodResult,
    champion_age_days,
)
from retrainer.registry import (
    ModelVersionInfo,
)
from retrainer.state import stores
from retrainer.steps.runtime import Runtime, history
from retrainer.steps.scoring import BatchRead, Scoring
from retrainer.validation import ValidationOutcome


def _batch_time(batch: BatchRead, schema: BatchSchema) -> datetime:
    """The batch's clock: its latest event time, ignoring timestamps from the future."""
    now = datetime.now(UTC)
    if batch.frame is not None and schema.time_column and schema.time_column in batch.frame.columns:
        times = parse_times(batch.frame[schema.time_column])
        # A few rows stamped in 2031 (a clock bug, recorded as a notice) must not age the champion.
        times = times[times <= pd.Timestamp(now)]
        if not times.empty:
            return times.max().floor("us").to_pydatetime()
    return now


def _in_shadow(history: list[BatchRecord], index: int, needed: int) -> str | None:
    """The challenger in shadow whose verdict is still to come, as the journal has it (None: none). One still
    unfinished twice `needed` batches after it started no longer holds retrains back (labels that stopped
    coming must not stop retraining); a retrain then replaces it."""
    latest = open_shadow(history)
    if needed == 0 or latest is None:
        return None
    started = next((r.batch_index for r in reversed(history) if r.shadow is not None
                    and r.shadow.version == latest.version and r.shadow.outcome == "started"), None)
    if started is None or index - started > 2 * needed:
        return None
    return f"challenger v{latest.version} is in shadow ({latest.batches} of {needed} labelled batches in)"


@dataclass
class DecisionInputs:
    """What `decide` saw, besides the decision: recorded as they were."""

    decision: Decision
    champion_age_days: float | None
    new_labelled_rows: int


def decide(
    rt: Runtime,
    index: int,
    batch: BatchRead,
    champion: ModelVersionInfo,
    outcome: ValidationOutcome,
    drift: DriftResult | None,
    ood: OodResult | None,
    scoring: Scoring,
    history: list[BatchRecord],
    champion_refused: str | None = None,
    name: str = "",
) -> DecisionInputs:
    """Gather one batch's signals and let the policy decide: the champion's age on the batch's clock,
    the labelled rows since its training, and its metric on this batch or, without labels here, its
    latest late-labelled one."""
    age = champion_age_days(champion.trained_until, _batch_time(batch, rt.schema))
    new_labelled = labelled_since_champion(history, champion.version) + scoring.labelled_rows
    metric_value, metric_source, metric_index = scoring.metric, None, None
    if metric_value is None:
        late = late_measurement(history, champion.version)
        if late is not None:
            metric_value, metric_source, metric_index = late.metric, f"late labels of batch '{late.batch}'", \
                late.batch_index
    signals = Signals(
        batch_index=index,
        name=name,
        valid=outcome.valid,
        critical_failures=outcome.failures,
        drift_share=drift.share if drift else None,
        drifted_features=drift.drifted_features if drift else (),
        metric=rt.metric,
        metric_value=metric_value,
        metric_std_error=scoring.metric_std_error if metric_source is None else None,
        metric_source=metric_source,
        metric_batch_index=metric_index,
        # A champion validated on another metric (model.metric changed since) has no reference to compare.
        reference_metric=champion.validation_metric if _same_metric(rt, champion) else None,
        reference_std_error=champion.validation_std_error if _same_metric(rt, champion) else None,
        estimated_metric_value=scoring.estimate.value if scoring.estimate else None,
        ood_share=ood.share if ood else None,
        champion_age_days=age,
        champion_version=champion.version,
        new_labelled_rows=new_labelled,
        champion_refused=champion_refused,
        in_shadow=_in_shadow(history, index, rt.config.promotion.shadow_batches),
    )
    decision = policy.decide(signals, [r.past_cycle() for r in history], rt.config.policy, rt.config.training.window_batches)
    return DecisionInputs(decision, age, new_labelled)


@dataclass
class StalenessCheck:
    """What the staleness check found: why a retrain is due (None: none is), a one-line summary, and
    the window a retrain would train on (its newest accepted batch and its first)."""

    reason: str | None
    summary: str
    batch_index: int = 0
    window_start: int = 0


def check_staleness(rt: Runtime, champion: ModelVersionInfo) -> StalenessCheck:
    """The champion's age on the wall clock, the days since it was last verified, and the labelled rows
    since its training window."""
    now = datetime.now(UTC)
    age = champion_age_days(champion.trained_until, now)
    past = history(rt)
    new_labelled = labelled_since_champion(past, champion.version)
    # The registry remembers the gates that kept this champion (challengers tagged gate=failed against it).
    refusals = [v.created for v in rt.registry.versions()
                if v.tag("gate") == "failed" and v.tag("gate_champion") == champion.version and v.created]
    unverified = staleness.unverified_days(age, champion.version, [r.past_cycle() for r in past], rt.metric,
                                           champion.validation_metric, rt.config.policy,
                                           champion_age_days(max(refusals), now) if refusals else None,
                                           champion.validation_std_error)
    stored = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).indices()
    limit = rt.config.policy.max_champion_age_days
    summary = (f"champion v{champion.version}: age {'-' if age is None else f'{age:.1f}'} d, unverified "
               f"{'-' if unverified is None else f'{unverified:.1f}'} d (limit {'-' if limit is None else f'{limit:g}'} d), "
               f"{new_labelled} labelled row(s) since its training")
    reason = staleness.staleness_retrain(age, unverified, new_labelled, rt.config.policy)
    window = latest_window(stored, rt.config.training.window_batches)
    if reason is None or window is None:
        return StalenessCheck(None, summary + ("" if window else "; no accepted batch to train on"))
    return StalenessCheck(reason, summary, *window)


def _same_metric(rt: Runtime, champion: ModelVersionInfo) -> bool:
    """Whether the champion's validation metric is the one the config judges on now (versions from before
    the tag was kept were validated on the task's default, as then)."""
    return champion.tag("metric_name") in (None, rt.metric.name)
