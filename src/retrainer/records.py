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
    champion_version: str | None = None
    metric_name: str | None = None
    metric: float | None = None
    decision: DecisionName
    reasons: list[str] = Field(default_factory=list)
    # Each rule's signal, value, threshold and whether it fired (retrainer.policy.SignalCheck).
    signals: list[dict[str, Any]] = Field(default_factory=list)
    promoted: bool = False
    new_champion_version: str | None = None
    challenger_version: str | None = None
    retrain_error: str | None = None
    gate: dict[str, Any] | None = None
    batch_index: int = 0
    content_hash: str | None = None
    quarantined_as: str | None = None
    decision_id: str = ""
    mlflow_run_id: str | None = None
    stage_seconds: dict[str, float] = Field(default_factory=dict)


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
