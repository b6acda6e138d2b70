"""Prefect tasks: each step of `retrainer.steps` as a named task with its retry policy, plus what
only Prefect does (artifacts in its UI, events that start the retrain deployment, the transaction
that undoes a promotion whose checks failed).

Caching is off for every task, with Prefect's own setting (`tasks.default_no_cache`) applied once
in `step_task`: a batch is processed once, in order, and the journal, not Prefect's cache, is the record
of what was done.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import PREFECT_TASKS_DEFAULT_NO_CACHE, Settings
from prefect.states import State
from prefect.transactions import Transaction, get_transaction

from retrainer.core.gate import check_line
from retrainer.core.records import BatchRecord, RetrainOutcome
from retrainer.monitoring import DriftResult
from retrainer.observability import StageTimer, webhooks
from retrainer.pipeline.concurrency import promotion_lock
from retrainer.registry import ModelVersionInfo
from retrainer.registry.tracking import run_page
from retrainer.state import journal
from retrainer.steps import (
    checks,
    late_labels,
    promotion,
    scoring,
    shadow,
    storage,
    training,
)
from retrainer.steps import (
    decide as decide_step,
)
from retrainer.steps import record as record_step
from retrainer.steps import runtime as runtime_step
from retrainer.steps.promotion import Promotion, PromotionCheckFailed
from retrainer.steps.runtime import Runtime, claim_decision_id, history, new_decision_id, next_index
from retrainer.steps.scoring import BatchRead, Scoring
from retrainer.steps.training import TrainingWindow
from retrainer.validation import ValidationOutcome

__all__ = ["BatchRead", "PromotionCheckFailed", "Runtime", "Scoring", "TrainingWindow", "ValidationOutcome",
           "claim_decision_id", "history", "new_decision_id", "next_index"]

TRANSIENT_MLFLOW_CODES = ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED")
# Errors raised by these packages are network or database errors: worth another try.
TRANSIENT_PACKAGES = ("requests", "urllib3", "sqlalchemy", "psycopg", "httpx", "aiohttp", "botocore", "gcsfs")


def _transient(task: Any, task_run: Any, state: State) -> bool:
    """Retry only what may succeed next time: a service that did not answer, never a wrong input."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if type(error).__module__.split(".")[0] in TRANSIENT_PACKAGES:
        return True
    return getattr(error, "error_code", None) in TRANSIENT_MLFLOW_CODES


# Idempotent reads of MLflow are retried on transient errors. Writes (register, record) are not,
# since a write that failed after it landed would be done twice.
READ_RETRY_DELAYS: list[float] = [1.0, 4.0, 10.0]
# Storage writes that overwrite the same file (accepted store, predictions, reports) are safe to
# retry; the jitter spreads the retries of several workers hit by one outage.
STORAGE_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": READ_RETRY_DELAYS,
                                   "retry_jitter_factor": 0.5, "retry_condition_fn": _transient}




P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _settings_without_task_cache() -> tuple[Any, Settings]:
    """The current profile and its settings with `tasks.default_no_cache` on, built once per process: a
    settings copy costs ~34 ms, and `temporary_settings` around each of some 50 tasks made every
    process that imports the pipeline 1.7 s slower to start."""
    context = get_settings_context()
    return context.profile, context.settings.copy_with_update(updates={PREFECT_TASKS_DEFAULT_NO_CACHE: True})


def step_task(fn: Callable[P, R], **options: Any) -> Task[P, R]:
    """A step as a Prefect task, never cached (see the module's docstring)."""
    profile, settings = _settings_without_task_cache()
    with SettingsContext(profile=profile, settings=settings):
        return task(fn, **options)


READ_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": READ_RETRY_DELAYS,
                                "retry_condition_fn": _transient}


def runtime(config_path: str | Path) -> Runtime:
    """The runtime of a config file, with the promotion lock that also takes the Prefect slot."""
    return runtime_step.runtime(config_path, promotion_lock)


def _not_refused(task: Any, task_run: Any, state: State) -> bool:
    # A webhook that answered 4xx/5xx will answer the same again; one that did not answer may not.
    return not isinstance(state.result(raise_on_failure=False), webhooks.NotificationError)



# -- the steps as tasks ------------------------------------------------------------------------
read_batch = step_task(scoring.read_batch, name="read batch")
find_champion = step_task(scoring.find_champion, name="find champion", **READ_RETRIES)
check_champion = step_task(scoring.check_champion, name="check champion", **READ_RETRIES)
score_batch = step_task(scoring.score_batch, name="score batch", **READ_RETRIES)
measure_performance = step_task(scoring.measure_performance, name="measure performance", **READ_RETRIES)
validate = step_task(checks.validate, name="validate batch")
measure_drift = step_task(checks.measure_drift, name="measure drift")
measure_ood = step_task(checks.measure_ood, name="measure out-of-distribution rows")
save_ood_rows = step_task(checks.save_ood_rows, name="save out-of-distribution rows", **STORAGE_RETRIES)
render_report = step_task(checks.render_report, name="render drift report", **STORAGE_RETRIES)
decide = step_task(decide_step.decide, name="decide")
check_staleness = step_task(decide_step.check_staleness, name="check staleness")
quarantine = step_task(storage.quarantine, name="quarantine batch", **STORAGE_RETRIES)
remove_landed = step_task(storage.remove_landed, name="remove rejected batch from landing")
split_off_rows = step_task(storage.split_off_rows, name="split off rejected rows", **STORAGE_RETRIES)
accept = step_task(storage.accept, name="accept batch", **STORAGE_RETRIES)
save_predictions = step_task(storage.save_predictions, name="save predictions", **STORAGE_RETRIES)
combine = step_task(storage.combine, name="combine batches")
read_labels = step_task(late_labels.read_labels, name="read labels")
apply_labels = step_task(late_labels.apply_labels, name="apply late labels")
assemble_window = step_task(training.assemble_window, name="assemble training window")
train_model = step_task(training.train_model, name="train challenger")
adopt_model = step_task(training.adopt_model, name="load and measure the adopted model")
choose_window = step_task(training.choose_window, name="choose training window")
register = step_task(training.register, name="register model version")
refuse_if_initialised = step_task(training.refuse_if_initialised, name="check not initialised")
draft = step_task(training.draft, name="draft suite")
evaluate = step_task(promotion.evaluate, name="evaluate champion vs challenger")
start_shadow = step_task(shadow.start_shadow, name="put challenger in shadow")
shadow_batch = step_task(shadow.shadow_batch, name="shadow evaluation")
load_served_model = step_task(promotion.load_served_model, name="load the served champion", **READ_RETRIES)
after_rollback = promotion.after_rollback
notify = step_task(record_step.notify, name="notify", retries=2, retry_delay_seconds=[1.0, 5.0],
               retry_condition_fn=_not_refused)
push_metrics = step_task(record_step.push_metrics, name="push metrics", retries=2, retry_delay_seconds=[1.0, 5.0])
log_cycle_json = step_task(record_step.log_cycle_json, name="log cycle")
earlier_retrain = step_task(record_step.earlier_retrain, name="find earlier retrain")
record_retrain = step_task(record_step.record_retrain, name="record retrain outcome", **READ_RETRIES)
apply_approval = step_task(record_step.apply_approval, name="apply approval")


def _promote(rt: Runtime, challenger: ModelVersionInfo, champion: ModelVersionInfo, verdict: Any) -> Promotion:
    done = promotion.promote(rt, challenger, champion, verdict)
    # What the rollback hook needs to put the aliases back, should a later step of the transaction fail.
    transaction = get_transaction()
    if transaction is not None and done.undo is not None:
        transaction.set("undo", done.undo)
    return done


promote = step_task(_promote, name="promote")


@promote.on_rollback
def _undo_promotion(transaction: Transaction) -> None:
    """The transaction around a promotion failed after @champion moved: put the aliases back."""
    undo = transaction.get("undo", None)
    if undo:
        promotion.undo_promotion(undo, promotion_lock)


def _verify_promotion(rt: Runtime, challenger: ModelVersionInfo, done: Promotion, window: TrainingWindow) -> None:
    promotion.verify_promotion(rt, challenger, done, window, load=load_served_model)


verify_promotion = step_task(_verify_promotion, name="check the new champion")


def _record_cycle(rt: Runtime, cycle: BatchRecord, outcome: ValidationOutcome, drift: DriftResult | None,
                  files: list[Path], timer: StageTimer) -> BatchRecord:
    def publish(done: BatchRecord, run_id: str) -> None:
        _cycle_artifacts(rt, done, outcome, drift, files, run_id)

    return record_step.record_cycle(rt, cycle, outcome, drift, files, timer, publish)


record_cycle = step_task(_record_cycle, name="record cycle")


# -- what the Prefect UI shows ------------------------------------------------------------------
def _cycle_artifacts(rt: Runtime, record: BatchRecord, outcome: ValidationOutcome, drift: DriftResult | None,
                     files: list[Path], run_id: str) -> None:
    """What the Prefect UI shows of a cycle, under keys per model (each key keeps its history):
    `<model>-cycle` the summary, `<model>-drift` the per-feature scores, `<model>-drift-report` a link
    to Evidently's HTML report in the cycle's MLflow run."""
    key = _artifact_key(rt.config.model.name)
    create_markdown_artifact(key=f"{key}-cycle", markdown=cycle_markdown(record, outcome),
                             description=f"retrainer cycle on batch {record.batch}")
    if drift is not None:
        create_table_artifact(
            key=f"{key}-drift",
            table=[{"feature": f.column, "stat test": f.stattest, "score": round(f.score, 6),
                    "threshold": f.threshold, "drifted": f.drifted} for f in drift.features],
            description=f"drift of batch {record.batch} against the champion's training data "
                        f"(share {record.drift_share:.2f})",
        )
    report = next((f for f in files if f.suffix == ".html"), None)
    if report is not None:
        create_link_artifact(key=f"{key}-drift-report", link=_report_link(rt, run_id, report),
                             link_text=f"Evidently drift report, batch {record.batch}",
                             description="the full report, in the cycle's MLflow run")


def _report_link(rt: Runtime, run_id: str, report: Path) -> str:
    """The MLflow UI page of the report when MLflow is a server, else the report file itself."""
    return run_page(rt.registry.client, rt.config.tracking_uri, run_id) or report.resolve().as_uri()


def _artifact_key(name: str) -> str:
    # Prefect artifact keys allow lowercase letters, digits and dashes only.
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def cycle_markdown(record: BatchRecord, outcome: ValidationOutcome) -> str:
    """The cycle as a person reads it in the Prefect UI."""
    lines = [
        f"## Batch `{record.batch}`: **{record.decision}**",
        "",
        "| rows | valid | drift share | out of distribution | metric | estimated | champion |",
        "|---|---|---|---|---|---|---|",
        f"| {record.rows} | {'yes' if record.valid else 'no'} | {_number(record.drift_share, '.2f')} | "
        f"{_number(record.ood_share, '.1%')} | "
        f"{'-' if record.metric is None else f'{record.metric_name} {record.metric:.4f}'} | "
        f"{_number(record.estimated_metric, '.4f')} | v{record.champion_version} |",
        "",
    ]
    lines += [f"- reason: {reason}" for reason in record.reasons]
    lines += [f"- critical: {failure}" for failure in outcome.failures]
    lines += [f"- warning: {warning}" for warning in outcome.warnings]
    if record.drifted_features:
        lines.append(f"- drifted features: {', '.join(record.drifted_features)}")
    if record.decision == "retrain":
        if record.retrain_error:
            lines.append(f"- retrain failed: {record.retrain_error} (@champion unchanged)")
        elif record.challenger_version is None:
            # Requested by event: the `retrain` deployment's own flow run trains, judges and promotes.
            lines.append("- retrain requested: the `retrain` flow run trains, judges and promotes; its artifact "
                         "and this batch's record show the outcome")
        else:
            lines.append(f"- {RetrainOutcome.from_dict(record.model_dump()).summary()}")
    if record.shadow is not None and record.shadow.outcome != "started":
        shadow = record.shadow
        figures = ("" if shadow.metric is None or shadow.champion_metric is None else
                   f": {record.metric_name} {shadow.champion_metric:.4f} (champion) vs {shadow.metric:.4f}")
        lines.append(f"- challenger v{shadow.version} in shadow, batch {shadow.batches} of {shadow.needed}{figures}: "
                     f"**{shadow.outcome}**" + (f" — {shadow.reason}" if shadow.reason else ""))
    return "\n".join(lines)


def retrain_markdown(outcome: RetrainOutcome, batch: str | None) -> str:
    """A retrain flow run's outcome as a person reads it in the Prefect UI: the headline, then every gate check."""
    lines = [f"## Retrain{f' for batch `{batch}`' if batch else ''}: {outcome.summary()}", ""]
    if outcome.gate is not None:
        lines += [check_line(c.passed, c.name, c.detail) for c in outcome.gate.checks]
    return "\n".join(lines)


def _retrain_artifact(rt: Runtime, outcome: dict[str, Any], batch: str | None) -> None:
    create_markdown_artifact(key=f"{_artifact_key(rt.config.model.name)}-retrain",
                             markdown=retrain_markdown(RetrainOutcome.from_dict(outcome), batch),
                             description=f"retrainer retrain{f' for batch {batch}' if batch else ''}")


retrain_artifact = step_task(_retrain_artifact, name="retrain artifact")


def _summary_artifact(model: str, kind: str, markdown: str) -> None:
    create_markdown_artifact(key=f"{_artifact_key(model)}-{kind}", markdown=markdown,
                             description=f"retrainer {kind}")


# A flow run's own page in the Prefect UI (`pipeline.run_summaries` writes it).
summary_artifact = step_task(_summary_artifact, name="run summary")


# -- retrains requested by event, and their approval ------------------------------------------
RETRAIN_REQUESTED = "retrainer.retrain.requested"


def model_resource(model: str) -> dict[str, str]:
    """The Prefect event resource of a model: what the retrain deployment's trigger matches on."""
    return {"prefect.resource.id": f"retrainer.model.{model}", "prefect.resource.name": model}


def _request_retrain(rt: Runtime, batch_index: int, window_start: int, decision_id: str,
                    reasons: list[str]) -> str:
    """Emit `retrainer.retrain.requested`: the retrain deployment's trigger starts a flow run with this
    payload as its parameters, on whatever worker serves it. Returns the event id."""
    from prefect.events import emit_event

    event = emit_event(
        event=RETRAIN_REQUESTED,
        resource=model_resource(rt.config.model.name),
        payload={"batch_index": batch_index, "window_start": window_start, "decision_id": decision_id,
                 "reasons": reasons},
    )
    if event is None:
        # Events need a Prefect server (PREFECT_API_URL); without one nothing would ever train.
        raise RuntimeError(f"could not emit {RETRAIN_REQUESTED}: no Prefect API to send it to "
                           "(set serve.retrain_trigger: inline to retrain in the monitor run)")
    return str(event.id)


request_retrain = step_task(_request_retrain, name="request retrain")


def request_recorded_retrain(rt: Runtime, record: BatchRecord) -> BatchRecord:
    """Ask for the retrain a recorded cycle decided, and note the event on its record."""
    window_start = record.window_start if record.window_start is not None else 0  # Decision.training_start
    event_id = request_retrain(rt, record.batch_index, window_start, record.decision_id, record.reasons)
    updated = journal.update_records(rt.journal, {record.batch_index: {"retrain_event_id": event_id}})
    return next((r for r in updated if r.decision_id == record.decision_id),
                record.model_copy(update={"retrain_event_id": event_id}))
