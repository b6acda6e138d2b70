"""The policy's vocabulary (pure): the rules' names, what one cycle measured (`Signals`), what the
policy remembers of earlier cycles (`PastCycle`), each rule's check as the record shows it
(`SignalCheck`), and the `Decision`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from retrainer.core.metrics import MetricSpec

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
    REJECTION_STREAK = "rejection streak"
    COOL_DOWN = "cool-down"
    SHADOW = "shadow"
    MINIMUM_LABELS = "minimum labels"


@dataclass(frozen=True)
class Signals:
    """What one cycle measured about one batch."""

    batch_index: int
    valid: bool
    critical_failures: Sequence[str] = ()
    # The batch's name, for reasons a person reads.
    name: str = ""
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
    # Its standard error on the champion's own validation rows: a reference measured on a few dozen rows
    # is as noisy as a small batch, and a difference from it is judged with both.
    reference_std_error: float | None = None
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
    # A challenger in shadow (promotion.shadow_batches) whose verdict is still to come, for a person:
    # "challenger v2 is in shadow (1 of 2 labelled batches in)"; it holds retrains back.
    in_shadow: str | None = None


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
    # For rejections: the reasons' kinds (`failure_kind`), what a rejection streak counts.
    rejected_by: tuple[str, ...] = ()


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


def failure_kind(failure: str) -> str:
    """What a critical failure is about, whatever it observed: the expectation and its column, or the
    structural check (`expect_column_values_to_be_between(year)` of `…(year): 100.0% unexpected`)."""
    return failure.split(": ", 1)[0]


@dataclass(frozen=True)
class RejectionStreak:
    """Batches rejected in a row for the same reason, this one included: the reason's kind, how many,
    the first batch's name, and whether this batch reached the escalation limit (the alert goes out once)."""

    kind: str
    batches: int
    since: str
    alert: bool = False


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
    # A rejection repeating the reason of the batches before it, at or past the escalation limit.
    rejection_streak: RejectionStreak | None = field(default=None, compare=False)

    def training_start(self) -> int:
        """First batch a challenger may train on: the change's first batch; with no change seen
        (staleness), any — the training window's own size applies."""
        return self.window_start if self.window_start is not None else 0
