"""Prefect tasks: each does one named step of a cycle by calling the library modules.

Tasks hold no decision logic (that is `policy` and `evaluation`) and flows hold no logic at
all: they wire these tasks. Caching is off on purpose (``NO_CACHE``): a batch is processed
once, in order, and the journal, not Prefect's cache, is the record of what was done.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from retrainer import data, notifications, policy
from retrainer.config import RetrainerConfig, load_config
from retrainer.evaluation import GateVerdict, gate
from retrainer.monitoring import DriftResult, champion_age_days, compute_drift, render_drift_report, report_wanted
from retrainer.metrics import MetricSpec, primary_metric, score
from retrainer.observability import StageTimer
from retrainer.records import BatchRecord
from retrainer.registry import ModelRegistry, ModelVersionInfo, RegistryError, connect, log_cycle
from retrainer.schema import (
    BatchSchema,
    feature_frame,
    has_labels,
    parse_times,
    schema_from_settings,
    target_values,
)
from retrainer.training import TrainedModel, labelled_rows, split_holdout, train
from retrainer.validation import ValidationOutcome, draft_suite, save_suite, validate_batch

TRANSIENT_MLFLOW_CODES = ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED")


def _transient(task: Any, task_run: Any, state: State) -> bool:
    """Retry only what may succeed next time: a service that did not answer, never a wrong input."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if type(error).__module__.split(".")[0] in ("requests", "urllib3", "sqlalchemy"):
        return True
    return getattr(error, "error_code", None) in TRANSIENT_MLFLOW_CODES


# Idempotent reads of MLflow are retried on transient errors. Writes (register, record) are not,
# since a write that failed after it landed would be done twice.
READ_RETRY_DELAYS: list[float] = [1.0, 4.0, 10.0]


@dataclass
class Runtime:
    """Everything a cycle needs that outlives one cycle: config, schema, registry and caches."""

    config_path: Path
    config: RetrainerConfig
    registry: ModelRegistry
    # Per champion version: the reference as model input, and the champion's predictions on it.
    reference_inputs: dict[str, tuple[pd.DataFrame, np.ndarray]] = field(default_factory=dict)

    @property
    def schema(self) -> BatchSchema:
        return schema_from_settings(self.config.model)

    @property
    def metric(self) -> MetricSpec:
        return primary_metric(self.schema.task)

    @property
    def journal(self) -> Path:
        return self.config.storage.timeline_path(self.config.model.name)


@functools.lru_cache(maxsize=8)
def _runtime(config_path: str, modified: float) -> Runtime:
    config = data.with_saved_columns(load_config(config_path))
    client = connect(config)
    return Runtime(Path(config_path), config, ModelRegistry(client, config))


def runtime(config_path: str | Path) -> Runtime:
    """The runtime of a config file, rebuilt when the file changes (an edit applies next cycle)."""
    path = Path(config_path).resolve()
    return _runtime(str(path), path.stat().st_mtime)


def new_decision_id() -> str:
    return uuid.uuid4().hex[:12]


# -- reading and scoring ---------------------------------------------------------------------
@dataclass
class BatchRead:
    frame: pd.DataFrame | None
    error: str | None = None
    content_hash: str | None = None

    @property
    def rows(self) -> int:
        return 0 if self.frame is None else len(self.frame)


@task(name="read batch", cache_policy=NO_CACHE)
def read_batch(path: str) -> BatchRead:
    try:
        digest = data.content_hash(Path(path))
    except OSError as exc:
        return BatchRead(None, f"cannot open file ({exc.strerror})")
    try:
        return BatchRead(data.read_batch(Path(path)), content_hash=digest)
    except data.BatchReadError as exc:
        return BatchRead(None, str(exc), digest)


@task(name="find champion", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def find_champion(rt: Runtime) -> ModelVersionInfo:
    champion = rt.registry.champion()
    if champion is None:
        raise RegistryError(
            f"model '{rt.registry.name}' has no @{rt.config.mlflow.aliases.champion}: run `retrainer init` first"
        )
    return champion


@dataclass
class Scoring:
    # The champion's predictions, indexed like the batch's rows.
    predictions: pd.Series | None = None
    metric: float | None = None
    labelled_rows: int = 0


@task(name="score batch", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def score_batch(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> Scoring:
    """The champion's predictions, made before the batch's labels are used for anything."""
    schema = rt.schema
    if batch.frame is None or any(c not in batch.frame.columns for c in schema.features):
        return Scoring()
    model = rt.registry.load_model(champion)
    return Scoring(pd.Series(model.predict(feature_frame(batch.frame, schema)), index=batch.frame.index))


@task(name="measure performance", cache_policy=NO_CACHE)
def measure_performance(rt: Runtime, batch: BatchRead, scoring: Scoring) -> Scoring:
    """The champion's metric on the batch's labelled rows (those kept, after row-level quarantine)."""
    schema = rt.schema
    if batch.frame is None or scoring.predictions is None:
        return scoring
    predictions = scoring.predictions.loc[batch.frame.index]
    if not has_labels(batch.frame, schema):
        return Scoring(predictions)
    targets = target_values(batch.frame, schema)
    labelled = targets.notna()  # a label that is not a number (regression) counts as missing
    if not labelled.any():
        return Scoring(predictions)
    metric = score(schema.task, targets[labelled], predictions[labelled])
    return Scoring(predictions, metric, int(labelled.sum()))


# -- validation, drift, decision ----------------------------------------------------------------
@task(name="validate batch", cache_policy=NO_CACHE)
def validate(rt: Runtime, batch: BatchRead, past: list[BatchRecord]) -> ValidationOutcome:
    """Unreadable, duplicate, structurally broken, or judged by the suite as it is on disk now."""
    if batch.frame is None:
        return ValidationOutcome(valid=False, failures=[f"unreadable: {batch.error}"], result={"read_error": batch.error})
    # Only batches that were used count: a rejected batch may come back after a suite fix.
    earlier = next((r.batch for r in past if batch.content_hash and r.content_hash == batch.content_hash
                    and r.decision != "reject_batch"), None)
    if earlier is not None:
        # Counted once: a re-delivered batch must not weigh twice in training or drift history.
        reason = f"duplicate: same content as batch '{earlier}'"
        return ValidationOutcome(valid=False, failures=[reason], result={"duplicate_of": earlier})
    return validate_batch(batch.frame, rt.schema, rt.config.suite_path, rt.config.validation)


def _reference_inputs(rt: Runtime, champion: ModelVersionInfo) -> tuple[pd.DataFrame, np.ndarray]:
    if champion.version not in rt.reference_inputs:
        reference = feature_frame(rt.registry.load_reference(champion), rt.schema)
        predictions = np.asarray(rt.registry.load_model(champion).predict(reference))
        rt.reference_inputs = {champion.version: (reference, predictions)}
    return rt.reference_inputs[champion.version]


@task(name="measure drift", cache_policy=NO_CACHE)
def measure_drift(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> DriftResult:
    """Drift against the champion's own training data (train/serve skew), features and predictions."""
    assert batch.frame is not None
    reference, reference_predictions = _reference_inputs(rt, champion)
    return compute_drift(
        reference, feature_frame(batch.frame, rt.schema), rt.schema, rt.config.drift,
        rt.config.policy.drift_share_threshold, reference_predictions,
        None if scoring.predictions is None else scoring.predictions.to_numpy(),
    )


def _batch_time(batch: BatchRead, schema: BatchSchema) -> datetime:
    """The batch's clock: its latest event time, ignoring timestamps from the future."""
    now = datetime.now(timezone.utc)
    if batch.frame is not None and schema.time_column and schema.time_column in batch.frame.columns:
        times = parse_times(batch.frame[schema.time_column])
        # A few rows stamped in 2031 (a clock bug, recorded as a notice) must not age the champion.
        times = times[times <= pd.Timestamp(now)]
        if not times.empty:
            return times.max().floor("us").to_pydatetime()
    return now


def _past_cycles(records: list[BatchRecord]) -> list[policy.PastCycle]:
    return [policy.PastCycle(r.batch_index, r.decision, bool(r.dataset_drift)) for r in records]


@task(name="decide", cache_policy=NO_CACHE)
def decide(
    rt: Runtime,
    index: int,
    batch: BatchRead,
    champion: ModelVersionInfo,
    outcome: ValidationOutcome,
    drift: DriftResult | None,
    scoring: Scoring,
    history: list[BatchRecord],
) -> policy.Decision:
    signals = policy.Signals(
        batch_index=index,
        valid=outcome.valid,
        critical_failures=outcome.failures,
        drift_share=drift.share if drift else None,
        drifted_features=drift.drifted_features if drift else (),
        metric=rt.metric,
        metric_value=scoring.metric,
        reference_metric=champion.validation_metric,
        champion_age_days=champion_age_days(champion.trained_until, _batch_time(batch, rt.schema)),
        labelled_rows=scoring.labelled_rows,
    )
    return policy.decide(signals, _past_cycles(history), rt.config.policy)


# -- where the batch goes -------------------------------------------------------------------------
@task(name="quarantine batch", cache_policy=NO_CACHE)
def quarantine(rt: Runtime, path: str, name: str, outcome: ValidationOutcome) -> str:
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    return str(data.quarantine_batch(Path(path), name, folder, outcome.result, outcome.summary(name)))


@task(name="remove rejected batch from landing", cache_policy=NO_CACHE)
def remove_landed(path: str, quarantined: str) -> None:
    data.remove_landed(Path(path), Path(quarantined))


@task(name="split off rejected rows", cache_policy=NO_CACHE)
def split_off_rows(rt: Runtime, batch: BatchRead, name: str, outcome: ValidationOutcome) -> BatchRead:
    """Row-level quarantine: failing rows go to quarantine, the batch goes on with the rest only."""
    assert batch.frame is not None and outcome.rejected_rows is not None
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    data.quarantine_rows(outcome.rejected_rows, name, folder, outcome.result, outcome.summary(name))
    kept = batch.frame.drop(index=outcome.rejected_rows.index)
    return BatchRead(kept, content_hash=batch.content_hash)


@task(name="accept batch", cache_policy=NO_CACHE)
def accept(rt: Runtime, index: int, name: str, batch: BatchRead) -> None:
    assert batch.frame is not None
    data.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).add(index, name, batch.frame)


def history(rt: Runtime) -> list[BatchRecord]:
    return data.read_journal(rt.journal)


def next_index(rt: Runtime, past: list[BatchRecord]) -> int:
    """The next batch's index, past both the journal and the accepted store.

    A cycle that stopped after accepting its batch but before its journal line must not
    hand its index to the next batch (two batches under one index would mix in training).
    """
    stored = data.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).indices()
    return max([r.batch_index for r in past] + stored, default=-1) + 1


def warn_if_failed(state: State, what: str) -> None:
    """A side effect that failed (a webhook) is reported in one line, without failing the cycle."""
    if state.is_failed():
        error = state.result(raise_on_failure=False)
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        logging.getLogger("retrainer").warning("retrainer: warning: %s failed: %s", what, message)


def retrain_outcome(state: State) -> dict[str, Any]:
    """What the record says of a retrain: its result, or why it failed (the champion is untouched)."""
    if state.is_completed():
        return dict(state.result())
    error = state.result(raise_on_failure=False)
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return {"retrain_error": message}


# -- training, evaluation, promotion ----------------------------------------------------------
def _window_tags(schema: BatchSchema, frame: pd.DataFrame) -> dict[str, str]:
    if schema.time_column and schema.time_column in frame.columns:
        times = parse_times(frame[schema.time_column])
        if not times.empty:
            return {"window_start": times.min().isoformat(), "trained_until": times.max().isoformat()}
    return {}


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:16]


@dataclass
class TrainingWindow:
    train: pd.DataFrame
    holdout: pd.DataFrame
    batches: list[int]


@task(name="assemble training window", cache_policy=NO_CACHE)
def assemble_window(rt: Runtime, window_start: int, index: int) -> TrainingWindow:
    """Accepted batches from the change (at most `window_batches`), minus a holdout of the newest one."""
    first = max(window_start, index - rt.config.training.window_batches + 1)
    store = data.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name))
    older = store.load(first, index - 1)
    newest = store.load(index, index)
    rest, holdout = split_holdout(newest, rt.schema, rt.config.training.holdout_fraction, rt.config.training.seed)
    window = pd.concat([older, rest], ignore_index=True) if not older.empty else rest
    return TrainingWindow(window, holdout, [i for i in store.indices() if first <= i <= index])


@task(name="train challenger", cache_policy=NO_CACHE)
def train_model(rt: Runtime, frame: pd.DataFrame) -> TrainedModel:
    return train(frame, rt.schema, rt.config.model.estimator, rt.config.training)


@task(name="register model version", cache_policy=NO_CACHE)
def register(
    rt: Runtime, trained: TrainedModel, frame: pd.DataFrame, alias: str, reasons: list[str], decision_id: str,
    extra_tags: dict[str, str] | None = None,
) -> ModelVersionInfo:
    schema = rt.schema
    reference = labelled_rows(frame, schema).loc[:, [*schema.features, schema.target]]
    metric = rt.metric
    tags = {
        "validation_metric": f"{trained.validation_metric:.6f}",
        "metric_name": metric.name,
        "decision_id": decision_id,
        "reasons": "; ".join(reasons),
        "estimator": trained.estimator,
        "train_rows": str(trained.train_rows),
        **_window_tags(schema, frame),
        **(extra_tags or {}),
    }
    description = (
        f"Trained by retrainer ({trained.estimator}) on {trained.train_rows} rows; "
        f"validation {metric.name} {trained.validation_metric:.4f}.\nWhy: {'; '.join(reasons)}"
    )
    rt.registry.ensure_registered_model()
    info = rt.registry.register(
        trained.pipeline,
        reference,
        feature_frame(reference.head(5), schema),
        params={"estimator": trained.estimator, "features": ",".join(schema.features), "target": schema.target},
        metrics={f"validation_{metric.name}": trained.validation_metric, "train_rows": trained.train_rows,
                 "validation_rows": trained.validation_rows},
        tags=tags,
        description=description,
        run_name=f"train-{decision_id}",
    )
    rt.registry.set_alias(alias, info.version)
    return info


@task(name="evaluate champion vs challenger", cache_policy=NO_CACHE)
def evaluate(rt: Runtime, champion: ModelVersionInfo, challenger: ModelVersionInfo, holdout: pd.DataFrame) -> GateVerdict:
    """Both models on the same held-out rows; the gate decides."""
    schema = rt.schema
    inputs = feature_frame(holdout, schema)
    verdict = gate(
        schema.task,
        target_values(holdout, schema),
        rt.registry.load_model(champion).predict(inputs),
        rt.registry.load_model(challenger).predict(inputs),
        rt.config.promotion,
        seed=rt.config.training.seed,
    )
    rt.registry.tag_version(challenger.version, "holdout_digest", _digest(holdout))
    rt.registry.tag_version(challenger.version, "gate", "passed" if verdict.passed else "failed")
    return verdict


@task(name="promote", cache_policy=NO_CACHE)
def promote(rt: Runtime, challenger: ModelVersionInfo, champion: ModelVersionInfo, verdict: GateVerdict) -> bool:
    """auto: a passing gate moves @champion; manual: the version waits for a person."""
    if not verdict.passed:
        return False
    if rt.config.promotion.mode == "manual":
        rt.registry.tag_version(challenger.version, "awaiting-approval", "true")
        return False
    rt.registry.promote(challenger.version, expected_champion=champion.version)
    return True


# -- first champion ---------------------------------------------------------------------------
@task(name="check not initialised", cache_policy=NO_CACHE)
def refuse_if_initialised(rt: Runtime) -> None:
    champion = rt.registry.champion()
    if champion is not None:
        raise RegistryError(
            f"model '{rt.registry.name}' already has @{rt.config.mlflow.aliases.champion} (version "
            f"{champion.version}); init trains the first champion only — use `retrainer run` for new batches"
        )


@task(name="combine batches", cache_policy=NO_CACHE)
def combine(reads: list[BatchRead]) -> pd.DataFrame:
    frames = [read.frame for read in reads if read.frame is not None]
    if len(frames) < len(reads):
        raise data.BatchReadError(next(f"{read.error}" for read in reads if read.frame is None))
    return pd.concat(frames, ignore_index=True)


@task(name="draft suite", cache_policy=NO_CACHE)
def draft(rt: Runtime, frame: pd.DataFrame) -> str:
    path = rt.config.suite_path
    save_suite(draft_suite(frame, rt.schema, rt.config.model.name), path)
    return str(path)


# -- the record -------------------------------------------------------------------------------
@task(name="render drift report", cache_policy=NO_CACHE)
def render_report(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, drift: DriftResult | None,
                  retraining: bool, folder_name: str) -> list[Path]:
    """Evidently's full report, only when someone will read it (see DriftSettings.render_report)."""
    if drift is None or batch.frame is None or not report_wanted(rt.config.drift, drift, retraining):
        return []
    reference, _ = _reference_inputs(rt, champion)
    folder = rt.config.storage.model_dir(rt.config.model.name) / "reports" / folder_name
    return render_drift_report(reference, feature_frame(batch.frame, rt.schema), rt.schema, rt.config.drift,
                               rt.config.policy.drift_share_threshold, folder)


def _not_refused(task: Any, task_run: Any, state: State) -> bool:
    # A webhook that answered 4xx/5xx will answer the same again; one that did not answer may not.
    return not isinstance(state.result(raise_on_failure=False), notifications.NotificationError)


@task(name="notify", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1.0, 5.0],
      retry_condition_fn=_not_refused)
def notify(rt: Runtime, record: BatchRecord) -> int | None:
    """POST the decision record to the webhook when its outcome is one people asked to hear about."""
    events = notifications.wanted(rt.config.notifications, record)
    if not events:
        return None
    url = rt.config.notifications.webhook_url
    assert url is not None
    return notifications.post(url, notifications.payload(rt.config.model.name, events, record),
                              rt.config.notifications.timeout_seconds)


@task(name="record cycle", cache_policy=NO_CACHE)
def record_cycle(
    rt: Runtime, record: BatchRecord, outcome: ValidationOutcome, drift: DriftResult | None, files: list[Path],
    timer: StageTimer,
) -> BatchRecord:
    """One MLflow run per cycle with the decision record as an artifact, then the journal line."""
    with timer.stage("record"):
        record.stage_seconds = timer.rounded()
        metrics = {
            "rows": float(record.rows),
            "valid": float(record.valid),
            "drift_share": record.drift_share,
            "prediction_drift": record.prediction_drift,
            "metric": record.metric,
            **{f"seconds_{k}": v for k, v in record.stage_seconds.items()},
        }
        documents: dict[str, Any] = {
            "validation_result.json": outcome.result or {"failures": outcome.failures},
            "decision_record.json": json.loads(record.model_dump_json()),
        }
        if drift is not None:
            documents["drift.json"] = drift.to_dict()
        if record.gate is not None:
            documents["gate.json"] = record.gate
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
            },
            documents=documents,
            files=files,
        )
        create_markdown_artifact(
            key=f"{_artifact_key(rt.config.model.name)}-cycle",
            markdown=cycle_markdown(record, outcome),
            description=f"retrainer cycle on batch {record.batch}",
        )
    record = record.model_copy(update={"mlflow_run_id": run_id, "stage_seconds": timer.rounded()})
    data.append_record(record, rt.journal)
    return record


def _artifact_key(name: str) -> str:
    # Prefect artifact keys allow lowercase letters, digits and dashes only.
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def cycle_markdown(record: BatchRecord, outcome: ValidationOutcome) -> str:
    """The cycle as a person reads it in the Prefect UI."""
    lines = [
        f"## Batch `{record.batch}`: **{record.decision}**",
        "",
        "| rows | valid | drift share | metric | champion |",
        "|---|---|---|---|---|",
        f"| {record.rows} | {'yes' if record.valid else 'no'} | "
        f"{'-' if record.drift_share is None else f'{record.drift_share:.2f}'} | "
        f"{'-' if record.metric is None else f'{record.metric_name} {record.metric:.4f}'} | v{record.champion_version} |",
        "",
    ]
    lines += [f"- reason: {reason}" for reason in record.reasons]
    lines += [f"- critical: {failure}" for failure in outcome.failures]
    lines += [f"- warning: {warning}" for warning in outcome.warnings]
    if record.drifted_features:
        lines.append(f"- drifted features: {', '.join(record.drifted_features)}")
    if record.decision == "retrain":
        lines.append(f"- challenger v{record.challenger_version}: "
                     f"{'promoted to @champion' if record.promoted else 'not promoted'}")
    return "\n".join(lines)
