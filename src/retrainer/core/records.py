"""The decision record of one cycle and the timeline they form (the schema of DESIGN.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from retrainer.core.decision import Decision, PastCycle, Rule, SignalCheck, failure_kind
from retrainer.core.gate import GateVerdict

DecisionName = Literal["init", "none", "retrain", "reject_batch"]


class GateCheckRecord(BaseModel):
    """One check of the gate (`core.gate.Check`) as the record keeps it."""

    name: str
    passed: bool
    detail: str


class GateRecord(BaseModel):
    """The gate's verdict (`core.gate.GateVerdict`) as the record keeps it. Its figures may be null:
    a journal stores a metric that could not be computed (NaN) as null, and must read it back."""

    passed: bool
    metric_name: str
    champion_metric: float | None
    challenger_metric: float | None
    improvement: float | None
    ci_low: float | None
    ci_high: float | None
    churn: float | None
    holdout_rows: int
    checks: list[GateCheckRecord] = Field(default_factory=list)
    # Which batches the held-out rows came from (journals written before it: absent).
    holdout_source: str | None = None
    # Features whose rank or share in permutation importance moved most from champion to challenger.
    importance_shift: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, verdict: GateVerdict) -> GateRecord:
        """The record of a gate's verdict."""
        return cls.model_validate(asdict(verdict))


ShadowOutcome = Literal["started", "running", "promoted", "retired", "won"]


class ShadowRecord(BaseModel):
    """A challenger in shadow (`promotion.shadow_batches`) as a batch's record sees it: `started` by this
    cycle's retrain (its gate passed), `running` while it predicts labelled batches beside the champion, then
    `promoted` or `retired` (with the reason) once `needed` labelled batches are in (`won` when the mode was
    switched to manual meanwhile: it awaits approval), or retired early (a new challenger replaced it,
    @champion moved). `metric` and `champion_metric` are both models' on this batch's
    labelled rows (None: no labels); `batches` counts the labelled shadow batches so far, this one included."""

    version: str
    outcome: ShadowOutcome
    metric: float | None = None
    champion_metric: float | None = None
    batches: int = 0
    needed: int = 0
    # Whether this batch counted towards `needed` (its labels scored both models).
    counted: bool = False
    reason: str | None = None
    # The challenger in shadow that this cycle's retrain replaced (retired), if any.
    replaced: str | None = None


class RejectionStreakRecord(BaseModel):
    """Batches rejected in a row for one same reason, as the record of the latest keeps it (from the
    second on): the reason's kind, how many, since which batch, and whether this record raised the alert
    (once per streak, on reaching `policy.rejection_streak_batches`)."""

    kind: str
    batches: int
    since: str
    alert: bool = False


class BatchRecord(BaseModel):
    """One batch's cycle: what was measured, what was decided, and why."""

    batch: str
    rows: int
    valid: bool
    validation_failures: list[str] = Field(default_factory=list)
    validation_warnings: list[str] = Field(default_factory=list)
    drift_share: float | None = None
    dataset_drift: bool | None = None
    drifted_features: list[str] = Field(default_factory=list)
    prediction_drift: float | None = None
    # Every feature's drift score (p-value or distance, per its stat test), also below threshold.
    drift_scores: dict[str, float] = Field(default_factory=dict)
    target_drift: float | None = None
    # Share of rows out of the training distribution (isolation forest fitted with the champion).
    ood_share: float | None = None
    # Dataset drift or too many out-of-distribution rows: what the persistence rule counts.
    shifted: bool | None = None
    champion_version: str | None = None
    # Why the champion was not loaded (its format, provenance or types; see registry.trust): the
    # batch was validated and stored, nothing was scored.
    champion_refused: str | None = None
    champion_age_days: float | None = None
    metric_name: str | None = None
    metric: float | None = None
    # Every realized metric on the batch's labelled rows (accuracy, f1, … / rmse, mae).
    metrics: dict[str, float] = Field(default_factory=dict)
    labelled_rows: int = 0
    # The standard error of `metric` on those rows (the chance wander of one batch's number).
    metric_std_error: float | None = None
    # Labelled rows accepted since the champion's training window, this batch included.
    new_labelled_rows: int | None = None
    # The champion's estimated metric from its calibrated confidence, and its standard deviation.
    estimated_metric: float | None = None
    estimated_metric_std: float | None = None
    # Set when labels arrived after the cycle (`retrainer labels`): when, and how many rows.
    late_labels_at: str | None = None
    decision: DecisionName
    reasons: list[str] = Field(default_factory=list)
    # Each rule's signal, value, threshold and whether it fired.
    signals: list[SignalCheck] = Field(default_factory=list)
    promoted: bool = False
    new_champion_version: str | None = None
    challenger_version: str | None = None
    retrain_error: str | None = None
    # A passing challenger not promoted because @champion moved meanwhile (compare-and-set).
    promotion_conflict: str | None = None
    # A promotion undone because the new @champion did not serve (the transaction's rollback).
    promotion_rolled_back: str | None = None
    # The Prefect event that asked the retrain deployment for this batch's retrain (event mode);
    # the retrain's outcome is written into this record when it finishes.
    retrain_event_id: str | None = None
    # A person's answer to a paused retrain in the Prefect UI (manual mode).
    approval: str | None = None
    # Where the policy narrowed a retrain's window (the change's first batch; None: not narrowed)
    # and whether the retrain was a follow-up.
    window_start: int | None = None
    followup: bool = False
    gate: GateRecord | None = None
    # A challenger in shadow: started by this cycle's retrain, or judged on this batch (`ShadowRecord`).
    shadow: ShadowRecord | None = None
    batch_index: int = 0
    content_hash: str | None = None
    quarantined_as: str | None = None
    rejection_streak: RejectionStreakRecord | None = None
    # A quarantined batch run again (`retrainer requeue`): the batch index of the rejection it re-runs.
    requeue_of: int | None = None
    decision_id: str = ""
    mlflow_run_id: str | None = None
    stage_seconds: dict[str, float] = Field(default_factory=dict)

    @property
    def champion_moved(self) -> bool:
        """Whether this cycle promoted a challenger: its retrain's, or the one in shadow."""
        return self.promoted or (self.shadow is not None and self.shadow.outcome == "promoted")

    def fired(self, rule: Rule) -> bool:
        """Whether the policy's `rule` fired in this cycle (a trigger fired or a guard held back)."""
        return any(check.rule == rule and check.fired for check in self.signals)

    def past_cycle(self) -> PastCycle:
        """What the policy remembers of this cycle."""
        # A gate that compared both models and kept the champion verified it; one that could not
        # measure them (too few holdout rows) did not.
        refused = (self.decision == "retrain" and self.gate is not None and not self.gate.passed
                   and self.gate.champion_metric is not None and self.gate.challenger_metric is not None)
        return PastCycle(self.batch_index, self.decision,
                         dataset_drift=bool(self.dataset_drift if self.shifted is None else self.shifted),
                         window_start=self.window_start, followup=self.followup, name=self.batch,
                         champion_version=self.champion_version, outgrown=self.fired(Rule.OUTGROWN_REFERENCE),
                         outgrown_due=self.fired(Rule.OUTGROWN_PERSISTENCE), champion_age_days=self.champion_age_days,
                         metric_value=self.metric, metric_std_error=self.metric_std_error, gate_refused=refused,
                         rejected_by=tuple(failure_kind(f) for f in self.validation_failures)
                         if self.decision == "reject_batch" else ())


def _figure(value: float | None) -> str:
    """A metric for a person: four decimals, '-' when none was measured."""
    return "-" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain → evaluate → promote run did, as the cycle's record and the retrain flow carry it."""

    challenger_version: str | None = None
    promoted: bool = False
    new_champion_version: str | None = None
    gate: GateRecord | None = None
    promotion_conflict: str | None = None
    promotion_rolled_back: str | None = None
    # Why the run failed (the champion is then untouched); nothing else is set.
    retrain_error: str | None = None
    # A person's answer in the Prefect UI (manual mode).
    approval: str | None = None
    # The request was carried out already (an event delivered twice, a re-run): this is that outcome.
    already_done: bool = False
    # The challenger passed the gate and went into shadow (promotion.shadow_batches) instead of serving.
    shadow: ShadowRecord | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RetrainOutcome:
        """An outcome from its dict form (`to_dict`, a flow's result); keys it does not know are ignored."""
        known = {f.name for f in fields(cls)}
        kept = {key: value for key, value in values.items() if key in known}
        if kept.get("gate") is not None:
            kept["gate"] = GateRecord.model_validate(kept["gate"])
        if kept.get("shadow") is not None:
            kept["shadow"] = ShadowRecord.model_validate(kept["shadow"])
        return cls(**kept)

    def summary(self, figures: bool = True) -> str:
        """A retrain's outcome in one line for a person (a log line, an artifact's headline); without `figures`,
        no gate metrics in brackets (the demo's timeline has its own metric column)."""
        if self.retrain_error:
            return f"retrain failed: {self.retrain_error} (@champion unchanged)"
        gate = self.gate
        numbers = "" if gate is None or not figures else (
            f" (gate {'passed' if gate.passed else 'failed'}: {gate.metric_name} {_figure(gate.champion_metric)}"
            f" -> {_figure(gate.challenger_metric)})")
        if self.promoted:
            return f"challenger v{self.challenger_version} promoted to @champion{numbers}"
        if self.shadow is not None and self.shadow.outcome == "started":
            return (f"challenger v{self.challenger_version} passed the gate: in shadow beside the champion for the "
                    f"next {self.shadow.needed} labelled batch(es){numbers}")
        why = (self.approval if self.approval  # a person's answer, or that none came yet
               else f"another promotion came first: {self.promotion_conflict}" if self.promotion_conflict
               else f"rolled back: {self.promotion_rolled_back}" if self.promotion_rolled_back
               else "awaiting approval (manual mode)" if gate is not None and gate.passed
               else "failed: " + ", ".join(c.name for c in gate.checks if not c.passed) if gate is not None
               else "not judged")
        return f"challenger v{self.challenger_version} not promoted: {why}{numbers}"

    def to_dict(self) -> dict[str, Any]:
        """The outcome as the retrain flows return it: a failure is its error only."""
        if self.retrain_error is not None:
            return {"retrain_error": self.retrain_error}
        values = asdict(self)
        values["gate"] = None if self.gate is None else self.gate.model_dump()
        values["shadow"] = None if self.shadow is None else self.shadow.model_dump()
        for optional in ("retrain_error", "approval", "already_done", "shadow"):
            if not values[optional]:
                values.pop(optional)
        return values

    def record_fields(self, shadow: ShadowRecord | None = None) -> dict[str, Any]:
        """The fields of the cycle's `BatchRecord` this outcome fills (`shadow`: what the cycle's record says of
        a shadow before this retrain, unless the retrain started one)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "already_done"}
        values["shadow"] = self.shadow or shadow
        return values


@dataclass(frozen=True)
class ValidationSummary:
    """What validation said of a batch, as its record keeps it: valid or not, failures and warnings."""

    valid: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DriftSummary:
    """A batch's drift, as its record keeps it: the share of features that drifted and which, every
    feature's score, and the drift of the champion's predictions and of the labels (None: not measured)."""

    share: float
    drifted_features: list[str]
    prediction_drift: float | None
    # Every feature's score, also below threshold.
    scores: dict[str, float]
    target_drift: float | None


@dataclass(frozen=True)
class ScoringSummary:
    """The champion's scores on a batch, as its record keeps them: its metrics on the labelled rows and
    its estimated metric (with its standard deviation); None where there was nothing to score."""

    metric: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    estimated_metric: float | None = None
    estimated_metric_std: float | None = None
    metric_std_error: float | None = None


def build_record(
    *, batch: str, rows: int, batch_index: int, decision_id: str, content_hash: str | None,
    validation: ValidationSummary, drift: DriftSummary | None, ood_share: float | None, champion_version: str | None,
    champion_refused: str | None, champion_age_days: float | None, metric_name: str, scoring: ScoringSummary,
    new_labelled_rows: int, decision: Decision, quarantined_as: str | None, retrain: RetrainOutcome | None,
    requeue_of: int | None = None, shadow: ShadowRecord | None = None,
) -> BatchRecord:
    """One cycle's record from what its steps measured and what the policy decided (`shadow`: what became of
    a challenger in shadow on this batch; a shadow this cycle's retrain started takes its place)."""
    return BatchRecord(
        batch=batch, rows=rows, valid=validation.valid, validation_failures=validation.failures,
        validation_warnings=validation.warnings,
        drift_share=drift.share if drift else None,
        # What the policy made of drift only where drift was measured.
        dataset_drift=decision.dataset_drift if drift else None,
        drifted_features=drift.drifted_features if drift else [],
        prediction_drift=drift.prediction_drift if drift else None,
        drift_scores=drift.scores if drift else {},
        target_drift=drift.target_drift if drift else None,
        ood_share=ood_share, shifted=decision.shifted if drift else None,
        champion_version=champion_version, champion_refused=champion_refused, champion_age_days=champion_age_days,
        metric_name=metric_name, metric=scoring.metric, metrics=scoring.metrics, labelled_rows=scoring.labelled_rows,
        new_labelled_rows=new_labelled_rows, estimated_metric=scoring.estimated_metric,
        estimated_metric_std=scoring.estimated_metric_std, metric_std_error=scoring.metric_std_error,
        decision=decision.action, reasons=decision.reasons, signals=list(decision.checks),
        window_start=decision.window_start if decision.action == "retrain" else None, followup=decision.followup,
        batch_index=batch_index, content_hash=content_hash, quarantined_as=quarantined_as, decision_id=decision_id,
        requeue_of=requeue_of,
        rejection_streak=None if decision.rejection_streak is None
        else RejectionStreakRecord.model_validate(asdict(decision.rejection_streak)),
        **({"shadow": shadow} if retrain is None else retrain.record_fields(shadow)),
    )


def open_shadow(records: list[BatchRecord]) -> ShadowRecord | None:
    """The journal's latest word on a challenger in shadow, when its verdict is still to come (None: none)."""
    latest = next((r.shadow for r in reversed(records) if r.shadow is not None), None)
    return latest if latest is not None and latest.outcome in ("started", "running") else None


def labelled_since_champion(records: list[BatchRecord], champion_version: str | None) -> int:
    """Labelled rows accepted after the last batch the champion was trained on.

    The champion's training window ends at the cycle that made it (its retrain or the initial
    batches); a champion moved by hand to a version the journal does not know counts from the
    latest retrain.
    """
    end = trained_through(records, champion_version)
    return sum(r.labelled_rows for r in records if r.batch_index > end and r.decision in ("none", "retrain"))


def trained_through(records: list[BatchRecord], champion_version: str | None) -> int:
    """The last batch the champion's training window could hold (-1: none): the cycle that made it (its
    retrain or the initial batches); a version the journal does not know (moved by hand), the latest
    retrain's."""
    # The cycle whose retrain trained it (a challenger promoted from shadow serves from a later cycle).
    made = [r.batch_index for r in records if champion_version is not None
            and champion_version in (r.new_champion_version, r.challenger_version)]
    trained = [r.batch_index for r in records if r.decision in ("init", "retrain")]
    return max(made) if made else max(trained, default=-1)


def awaiting_requeue(records: list[BatchRecord]) -> list[BatchRecord]:
    """The rejected batches kept in quarantine that no later cycle has run again, oldest first: what
    `retrainer requeue` runs, each once."""
    rerun = {r.requeue_of for r in records if r.requeue_of is not None}
    return [r for r in records if r.decision == "reject_batch" and r.quarantined_as and r.batch_index not in rerun]


def used_copy_of(records: list[BatchRecord], content_hash: str | None) -> str | None:
    """The earlier batch with the same content that was used, if any: a re-delivered batch must not
    weigh twice in training or drift history. Only batches that were used count: a rejected batch
    may come back after a suite fix."""
    if not content_hash:
        return None
    return next((r.batch for r in records if r.content_hash == content_hash and r.decision != "reject_batch"), None)


def late_measurement(records: list[BatchRecord], champion_version: str) -> BatchRecord | None:
    """When the current batch has no labels: the champion's newest measurement, if its labels came late.

    A measurement from before the last retrain was already acted on, and a newer batch measured
    on time supersedes a late one.
    """
    since = max((r.batch_index for r in records
                 if r.new_champion_version == champion_version or r.decision in ("init", "retrain")), default=-1)
    measured = [r for r in records if r.champion_version == champion_version and r.decision == "none"
                and r.metric is not None and r.batch_index > since]
    newest = measured[-1] if measured else None
    return newest if newest is not None and newest.late_labels_at is not None else None


class TimelineSummary(BaseModel):
    """A timeline's totals: retrains, promotions, rejected batches, and the mean primary metric of the
    measured batches (the initial and the rejected ones left out)."""

    retrains: int
    promotions: int
    rejected_batches: list[str]
    mean_metric: float | None
    metric_name: str | None


def summarise(records: list[BatchRecord]) -> TimelineSummary:
    """The totals of a timeline of records."""
    # Rejected batches are left out: their metric measures broken data, not the model.
    scored = [r.metric for r in records if r.metric is not None and r.decision not in ("init", "reject_batch")]
    return TimelineSummary(
        retrains=sum(r.decision == "retrain" for r in records),
        promotions=sum(r.champion_moved for r in records),
        rejected_batches=[r.batch for r in records if r.decision == "reject_batch"],
        mean_metric=sum(scored) / len(scored) if scored else None,
        metric_name=next((r.metric_name for r in records if r.metric_name), None),
    )


def timeline_document(records: list[BatchRecord]) -> dict[str, Any]:
    """The timeline as the `--json` file holds it: every record, then the summary."""
    return {
        # Through JSON text, as the journal writes it: a NaN figure is null in both.
        "batches": [json.loads(r.model_dump_json()) for r in records],
        "summary": summarise(records).model_dump(mode="json"),
    }


def write_timeline(records: list[BatchRecord], path: Path) -> None:
    """Write the timeline document to `path` as JSON, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timeline_document(records), indent=2), encoding="utf-8")
