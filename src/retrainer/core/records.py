"""The decision record of one cycle and the timeline they form (the schema of DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

DecisionName = Literal["init", "none", "retrain", "reject_batch"]


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
    # Labelled rows accepted since the champion's training window, this batch included.
    new_labelled_rows: int | None = None
    # The champion's estimated metric from its calibrated confidence, and its standard deviation.
    estimated_metric: float | None = None
    estimated_metric_std: float | None = None
    # Set when labels arrived after the cycle (`retrainer labels`): when, and how many rows.
    late_labels_at: str | None = None
    decision: DecisionName
    reasons: list[str] = Field(default_factory=list)
    # Each rule's signal, value, threshold and whether it fired (retrainer.core.policy.SignalCheck).
    signals: list[dict[str, Any]] = Field(default_factory=list)
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
    gate: dict[str, Any] | None = None
    batch_index: int = 0
    content_hash: str | None = None
    quarantined_as: str | None = None
    decision_id: str = ""
    mlflow_run_id: str | None = None
    stage_seconds: dict[str, float] = Field(default_factory=dict)


def labelled_since_champion(records: list[BatchRecord], champion_version: str | None) -> int:
    """Labelled rows accepted after the last batch the champion was trained on.

    The champion's training window ends at the cycle that made it (its retrain or the initial
    batches); a champion moved by hand to a version the journal does not know counts from the
    latest retrain.
    """
    made = [r.batch_index for r in records
            if champion_version is not None and r.new_champion_version == champion_version]
    trained = [r.batch_index for r in records if r.decision in ("init", "retrain")]
    end = max(made) if made else max(trained, default=-1)
    return sum(r.labelled_rows for r in records if r.batch_index > end and r.decision in ("none", "retrain"))


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
    retrains: int
    promotions: int
    rejected_batches: list[str]
    mean_metric: float | None
    metric_name: str | None


def summarise(records: list[BatchRecord]) -> TimelineSummary:
    # Rejected batches are left out: their metric measures broken data, not the model.
    scored = [r.metric for r in records if r.metric is not None and r.decision not in ("init", "reject_batch")]
    return TimelineSummary(
        retrains=sum(r.decision == "retrain" for r in records),
        promotions=sum(r.promoted for r in records),
        rejected_batches=[r.batch for r in records if r.decision == "reject_batch"],
        mean_metric=sum(scored) / len(scored) if scored else None,
        metric_name=next((r.metric_name for r in records if r.metric_name), None),
    )


def timeline_document(records: list[BatchRecord]) -> dict[str, Any]:
    return {
        "batches": [r.model_dump(mode="json") for r in records],
        "summary": summarise(records).model_dump(mode="json"),
    }


def write_timeline(records: list[BatchRecord], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timeline_document(records), indent=2), encoding="utf-8")
