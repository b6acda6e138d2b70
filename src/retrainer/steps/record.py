"""The record of a cycle and of a retrain: the MLflow run and journal line, the JSON log, the
Pushgateway, the webhook; a person's approval answer."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from retrainer.core.records import BatchRecord, RetrainOutcome
from retrainer.monitoring import (
    DriftResult,
)
from retrainer.observability import StageTimer, cycle_log_line, cycle_samples, push_cycle, webhooks, write_cycle_log
from retrainer.observability.logs import decision_message
from retrainer.registry import (
    PromotionConflict,
    RegistryError,
    log_cycle,
)
from retrainer.registry.tracking import tag_run
from retrainer.state import journal
from retrainer.state.locks import LockTimeout
from retrainer.steps.runtime import Runtime
from retrainer.validation import ValidationOutcome


def notify(rt: Runtime, record: BatchRecord, events: list[str] | None = None) -> int | None:
    """POST the decision record to the webhook when its outcome (or `events`) is one people asked to hear about."""
    events = webhooks.wanted(rt.config.notifications, record, events)
    if not events:
        return None
    url = rt.config.notifications.webhook_url
    assert url is not None
    return webhooks.post(url, webhooks.payload(rt.config.model.name, events, record),
                              rt.config.notifications.timeout_seconds)


def push_metrics(rt: Runtime, record: BatchRecord, past: list[BatchRecord]) -> int:
    """The cycle's metrics to the Pushgateway, when one is configured; returns how many were pushed."""
    settings = rt.config.observability
    if not settings.pushgateway_url:
        return 0
    samples = cycle_samples(record, past, settings, rt.schema.features, datetime.now(UTC).timestamp())
    push_cycle(settings.pushgateway_url, settings.job, rt.config.model.name, samples, settings.timeout_seconds)
    return len(samples)


def log_cycle_json(rt: Runtime, record: BatchRecord) -> None:
    """One JSON line per cycle for log shippers, when `observability.json_log` says where."""
    target = rt.config.observability.json_log
    if target:
        write_cycle_log(target, rt.config.storage.workdir, cycle_log_line(rt.config.model.name, record))


def record_cycle(
    rt: Runtime, record: BatchRecord, outcome: ValidationOutcome, drift: DriftResult | None, files: list[Path],
    timer: StageTimer,
    publish: Callable[[BatchRecord, str], None] | None = None,
) -> BatchRecord:
    """One MLflow run per cycle with the decision record as an artifact, then the journal line.
    `publish` shows the cycle elsewhere once its run exists (the pipeline's Prefect artifacts)."""
    with timer.stage("record"):
        record.stage_seconds = timer.rounded()
        metrics = {
            "rows": float(record.rows),
            "valid": float(record.valid),
            "drift_share": record.drift_share,
            "prediction_drift": record.prediction_drift,
            "target_drift": record.target_drift,
            "ood_share": record.ood_share,
            "metric": record.metric,
            "estimated_metric": record.estimated_metric,
            "estimated_metric_std": record.estimated_metric_std,
            "champion_age_days": record.champion_age_days,
            "labelled_rows": float(record.labelled_rows),
            **{f"metric_{k}": v for k, v in record.metrics.items()},
            # Every score, also below threshold, so a slow creep shows in MLflow's charts.
            **{f"drift_score_{_metric_key(k)}": v for k, v in record.drift_scores.items()},
            **{f"seconds_{k}": v for k, v in record.stage_seconds.items()},
        }
        documents: dict[str, Any] = {
            "validation_result.json": outcome.result or {"failures": outcome.failures},
            "decision_record.json": json.loads(record.model_dump_json()),
        }
        if drift is not None:
            documents["drift.json"] = drift.to_dict()
        if record.gate is not None:
            documents["gate.json"] = record.gate.model_dump()
        run_id = log_cycle(
            rt.registry.client,
            rt.config,
            run_name=f"batch-{record.batch}",
            params={"batch": record.batch, "batch_index": record.batch_index,
                    "champion_version": record.champion_version},
            metrics={k: v for k, v in metrics.items() if v is not None},
            tags={
                "retrainer.decision": record.decision,
                "retrainer.decision_id": record.decision_id,
                "retrainer.reasons": "; ".join(record.reasons)[:5000],
                MLFLOW_NOTE: cycle_note(rt.config.model.name, record),
            },
            documents=documents,
            files=files,
        )
        if publish is not None:
            publish(record, run_id)
    record = record.model_copy(update={"mlflow_run_id": run_id, "stage_seconds": timer.rounded()})
    journal.append_record(record, rt.journal)
    return record


# MLflow's own tag for a run's description (the "Description" a person reads on the run's page).
MLFLOW_NOTE = "mlflow.note.content"


def cycle_note(model: str, record: BatchRecord) -> str:
    """A cycle run's description in the MLflow UI: the decision and why, and what a retrain came to, with a
    link to the version it produced."""
    lines = [decision_message(model, record.batch, record.decision, record.reasons)]
    if record.decision == "retrain":
        if record.challenger_version is None and record.retrain_error is None:
            lines.append("The retrain was requested by event: its outcome is written here when it is done.")
        else:
            lines.append(RetrainOutcome.from_dict(record.model_dump()).summary())
        if record.challenger_version:
            lines.append(f"[version {record.challenger_version}](#/models/{quote(model)}/versions/"
                         f"{record.challenger_version})")
    if record.shadow is not None and record.shadow.outcome != "started":
        shadow = record.shadow
        lines.append(f"Challenger [version {shadow.version}](#/models/{quote(model)}/versions/{shadow.version}) in "
                     f"shadow: {shadow.outcome} ({shadow.batches} of {shadow.needed} labelled batches)"
                     + (f": {shadow.reason}" if shadow.reason else ""))
    return "\n\n".join(lines)[:5000]


def _metric_key(name: str) -> str:
    # MLflow metric names allow letters, digits, and _ - . / and space.
    return re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", name)


def earlier_retrain(rt: Runtime, batch_index: int, decision_id: str) -> dict[str, Any] | None:
    """The outcome of this request if it was carried out already (an event delivered twice, a re-run)."""
    for record in journal.read_journal(rt.journal):
        if record.batch_index == batch_index and record.decision_id == decision_id and (
                record.challenger_version or record.retrain_error):
            return {"challenger_version": record.challenger_version, "promoted": record.promoted,
                    "new_champion_version": record.new_champion_version, "retrain_error": record.retrain_error,
                    "already_done": True}
    return None


def record_retrain(rt: Runtime, batch_index: int, decision_id: str, outcome: dict[str, Any]) -> BatchRecord | None:
    """Write a retrain's outcome into the record of the cycle that asked for it (journal and its MLflow
    run). A staleness check's request has no cycle record: its outcome is in the registry only."""
    # Only what the outcome says (a failure carries its error alone and leaves the rest as it was), and
    # whether it promoted, which is False unless it says so.
    fields = {key: value for key, value in RetrainOutcome.from_dict(outcome).record_fields().items()
              if key in outcome or key == "promoted"}
    matching = [r for r in journal.read_journal(rt.journal) if r.batch_index == batch_index and r.decision_id == decision_id]
    if not matching:
        return None
    updated = journal.update_records(rt.journal, {batch_index: fields})
    record = updated[0] if updated else None
    if record is not None and record.mlflow_run_id:
        tags = {"retrainer.promoted": str(record.promoted).lower(), MLFLOW_NOTE: cycle_note(rt.config.model.name, record)}
        if record.challenger_version:
            tags["retrainer.challenger_version"] = record.challenger_version
        if record.retrain_error:
            tags["retrainer.retrain_error"] = record.retrain_error[:5000]
        tag_run(rt.registry.client, record.mlflow_run_id, tags)
    return record


@dataclass
class ApprovalAnswer:
    """A person's answer on a paused retrain in the Prefect UI: approve or not, and why."""

    approve: bool
    comment: str


def apply_approval(rt: Runtime, version: str, answer: ApprovalAnswer | None) -> dict[str, Any]:
    """A person's answer from the Prefect UI: approve promotes (the same checks as `retrainer promote`),
    reject takes the version off the approval list; no answer in time leaves it for the MLflow-UI path."""
    from retrainer.steps.operator import RegistryCommands

    if answer is None:
        return {"approval": "no answer in time: still awaiting approval (`retrainer promote` or the MLflow UI)"}
    comment = answer.comment.strip() or ("approved" if answer.approve else "rejected")
    if not answer.approve:
        rt.registry.untag_version(version, "awaiting-approval")
        rt.registry.tag_version(version, "approval", "rejected")
        rt.registry.describe_version(version, f"Rejected in the Prefect UI: {comment}")
        return {"approval": f"rejected: {comment}"}
    commands = RegistryCommands(rt.config, rt.registry, rt.lock)
    try:
        commands.promote(version, f"approved in the Prefect UI: {comment}", force=False,
                         actor="Prefect UI approval")
    except (RegistryError, PromotionConflict, LockTimeout) as exc:
        return {"approval": f"approved, not promoted: {exc}"}
    return {"approval": f"approved: {comment}", "promoted": True, "new_champion_version": version}


def first_line(error: BaseException | Any) -> str:
    """An error as one line for a record or a log: its message's first line, else its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def warn_failed(what: str, error: BaseException | Any) -> None:
    """A side effect that failed (a webhook) is reported in one line, without failing the cycle."""
    logging.getLogger("retrainer").warning("retrainer: warning: %s failed: %s", what, first_line(error))
