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
import pickle
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from prefect.transactions import get_transaction

from retrainer.config import RetrainerConfig, load_config
from retrainer.core import labels, policy
from retrainer.core.gate import GateVerdict, ModelCosts, gate
from retrainer.core.metrics import MetricSpec, all_metrics, primary_metric
from retrainer.core.records import BatchRecord, labelled_since_champion, late_measurement
from retrainer.core.schema import (
    BatchSchema,
    conform,
    feature_chunks,
    feature_frame,
    has_labels,
    parse_times,
    schema_from_settings,
    target_values,
)
from retrainer.core.training import (
    TrainedModel,
    TrainingError,
    labelled_rows,
    pick_candidate,
    split_holdout,
    train,
    train_baseline,
)
from retrainer.data import batches as batch_files
from retrainer.data import quarantine as quarantine_files
from retrainer.monitoring import (
    DriftResult,
    Estimate,
    NoveltyModel,
    OodResult,
    PerformanceEstimator,
    champion_age_days,
    check_stattests,
    compute_drift,
    estimate_accuracy,
    fit_estimator,
    fit_novelty,
    render_drift_report,
    report_wanted,
    score_novelty,
)
from retrainer.monitoring.drift import sample
from retrainer.observability import StageTimer, cycle_log_line, cycle_samples, push_cycle, webhooks, write_cycle_log
from retrainer.pipeline.concurrency import promotion_lock
from retrainer.registry import (
    ModelRegistry,
    ModelVersionInfo,
    PromotionConflict,
    RegistryError,
    UntrustedModel,
    connect,
    log_cycle,
)
from retrainer.registry.tracking import log_late_metrics, run_page, tag_run
from retrainer.state import journal, stores
from retrainer.state.locks import LockTimeout
from retrainer.validation import ValidationOutcome, draft_suite, save_suite, validate_batch

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


@dataclass
class Runtime:
    """Everything a cycle needs that outlives one cycle: config, schema, registry and caches."""

    config_path: Path
    config: RetrainerConfig
    registry: ModelRegistry
    # Per champion version: the reference as model input, the champion's predictions on it,
    # and the reference's labels.
    reference_inputs: dict[str, tuple[pd.DataFrame, np.ndarray, pd.Series]] = field(default_factory=dict)
    # Per champion version: the isolation forest fitted on its training data.
    novelty: dict[str, NoveltyModel] = field(default_factory=dict)

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
    config = stores.with_saved_columns(load_config(config_path))
    check_stattests(config.drift, config_path)
    client = connect(config)
    return Runtime(Path(config_path), config, ModelRegistry(client, config))


def runtime(config_path: str | Path) -> Runtime:
    """The runtime of a config file, rebuilt when the file changes (an edit applies next cycle)."""
    path = Path(config_path).resolve()
    return _runtime(str(path), path.stat().st_mtime)


def new_decision_id() -> str:
    return uuid.uuid4().hex[:12]


def claim_decision_id(rt: Runtime, index: int, name: str) -> str:
    """The decision id of a claimed batch: the same for every attempt at that claim."""
    return hashlib.sha256(f"{rt.config.model.name}:{index}:{name}".encode()).hexdigest()[:12]


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
        digest = batch_files.content_hash(Path(path))
    except OSError as exc:
        return BatchRead(None, f"cannot open file ({exc.strerror})")
    try:
        return BatchRead(batch_files.read_batch(Path(path)), content_hash=digest)
    except batch_files.BatchReadError as exc:
        return BatchRead(None, str(exc), digest)


@task(name="find champion", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def find_champion(rt: Runtime) -> ModelVersionInfo:
    note_outside_moves(rt.config, rt.registry, "a monitoring cycle")
    champion = rt.registry.champion()
    if champion is None:
        raise RegistryError(
            f"model '{rt.registry.name}' has no @{rt.config.mlflow.aliases.champion}: run `retrainer init` first"
        )
    return champion


PERFORMANCE_ESTIMATOR = "performance_estimator.json"


@task(name="check champion", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def check_champion(rt: Runtime, champion: ModelVersionInfo) -> str | None:
    """Load the champion the safe way (`registry.trust`); the reason when it is refused (None: it
    serves). A refusal is the cycle's outcome, not its failure: the batch is still validated and kept."""
    try:
        rt.registry.load_model(champion)
    except UntrustedModel as exc:
        logging.getLogger("retrainer").error("retrainer: error: %s", exc)
        return str(exc)
    return None


def note_outside_moves(config: RetrainerConfig, registry: ModelRegistry, noticed_by: str) -> None:
    """Put alias moves made outside retrainer (the MLflow UI) on record — under the promotion lock,
    so that a promotion half-way between moving an alias and recording it is not mistaken for one.
    When a promotion holds the lock, this waits for the next look."""
    try:
        with promotion_lock(config, timeout_seconds=2.0):
            registry.note_outside_moves(noticed_by=noticed_by)
    except LockTimeout:
        pass


@dataclass
class Scoring:
    # The champion's predictions, indexed like the batch's rows.
    predictions: pd.Series | None = None
    # Classifiers: the class probabilities (columns in `classes` order), indexed like the rows.
    probabilities: pd.DataFrame | None = None
    classes: list[Any] | None = None
    metric: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    estimate: Estimate | None = None
    # Why the champion could not predict this batch (it loaded, then failed): recorded as a refusal.
    failure: str | None = None


@task(name="score batch", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def score_batch(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> Scoring:
    """The champion's predictions, made before the batch's labels are used for anything."""
    schema = rt.schema
    if batch.frame is None or any(c not in batch.frame.columns for c in schema.features):
        return Scoring()
    model = rt.registry.load_model(champion)
    probabilistic = schema.task == "classification" and hasattr(model, "predict_proba")
    predicted, probabilities = [], []
    try:
        for inputs in feature_chunks(batch.frame, schema):
            predicted.append(np.asarray(model.predict(inputs)))
            if probabilistic:
                probabilities.append(np.asarray(model.predict_proba(inputs)))
    except Exception as exc:  # whatever a model raises: the cycle records it instead of dying on it
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        return Scoring(failure=f"version {champion.version} of '{rt.registry.name}' loads but cannot predict "
                               f"this batch ({type(exc).__name__}: {first_line})")
    predictions = pd.Series(np.concatenate(predicted), index=batch.frame.index)
    if not probabilistic:
        return Scoring(predictions)
    return Scoring(predictions, pd.DataFrame(np.concatenate(probabilities), index=batch.frame.index),
                   list(model.classes_))


def _estimate(rt: Runtime, champion: ModelVersionInfo, probabilities: pd.DataFrame) -> Estimate | None:
    document = rt.registry.load_document(champion, PERFORMANCE_ESTIMATOR)
    estimator = PerformanceEstimator.from_dict(document) if document else None
    if estimator is None or probabilities.empty:
        return None
    return estimate_accuracy(estimator, probabilities.to_numpy().max(axis=1))


@task(name="measure performance", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def measure_performance(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> Scoring:
    """The champion's metrics on the batch's labelled rows (those kept, after row-level quarantine),
    and its estimated metric from calibrated confidence, which needs no labels."""
    schema = rt.schema
    if batch.frame is None or scoring.predictions is None:
        return scoring
    rows = batch.frame.index
    predictions = scoring.predictions.loc[rows]
    probabilities = None if scoring.probabilities is None else scoring.probabilities.loc[rows]
    kept = Scoring(predictions, probabilities, scoring.classes,
                   estimate=None if probabilities is None else _estimate(rt, champion, probabilities))
    if not has_labels(batch.frame, schema):
        return kept
    targets = target_values(batch.frame, schema)
    labelled = targets.notna()  # a label that is not a number (regression) counts as missing
    if not labelled.any():
        return kept
    kept.metrics = all_metrics(schema.task, targets[labelled], predictions[labelled],
                               None if probabilities is None else probabilities[labelled].to_numpy(), scoring.classes)
    kept.metric = kept.metrics[rt.metric.name]
    kept.labelled_rows = int(labelled.sum())
    return kept


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


def _reference_inputs(rt: Runtime, champion: ModelVersionInfo) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    if champion.version not in rt.reference_inputs:
        snapshot = rt.registry.load_reference(champion)
        reference = feature_frame(snapshot, rt.schema)
        predictions = np.asarray(rt.registry.load_model(champion).predict(reference))
        # Re-based whenever the champion changes: only the serving champion's reference is kept.
        rt.reference_inputs = {champion.version: (reference, predictions, target_values(snapshot, rt.schema))}
    return rt.reference_inputs[champion.version]


@task(name="measure drift", cache_policy=NO_CACHE)
def measure_drift(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> DriftResult:
    """Drift against the champion's own training data (train/serve skew), features and predictions."""
    assert batch.frame is not None
    reference, reference_predictions, reference_target = _reference_inputs(rt, champion)
    labels = target_values(batch.frame, rt.schema) if has_labels(batch.frame, rt.schema) else None
    # Sampled before it is converted: the same rows compute_drift would sample, without a converted
    # copy of the whole batch.
    current = feature_frame(sample(batch.frame, rt.config.drift.sample_size), rt.schema)
    return compute_drift(
        reference, current, rt.schema, rt.config.drift,
        rt.config.policy.drift_share_threshold, reference_predictions,
        None if scoring.predictions is None else scoring.predictions.to_numpy(),
        reference_target, labels,
    )


@task(name="measure out-of-distribution rows", cache_policy=NO_CACHE)
def measure_ood(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> OodResult | None:
    """The share of rows unlike the champion's training data; the most unusual saved for review."""
    settings = rt.config.drift
    if not settings.out_of_distribution or batch.frame is None or batch.frame.empty:
        return None
    if champion.version not in rt.novelty:
        reference, _, _ = _reference_inputs(rt, champion)
        rt.novelty = {champion.version: fit_novelty(reference, rt.schema, settings.ood_reference_quantile,
                                                    rt.config.training.seed)}
    return score_novelty(rt.novelty[champion.version], feature_frame(batch.frame, rt.schema), rt.schema,
                         settings.ood_top_rows)


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


def _fired(record: BatchRecord, rule: str) -> bool:
    return any(check.get("rule") == rule and check.get("fired") for check in record.signals)


def _past_cycles(records: list[BatchRecord]) -> list[policy.PastCycle]:
    return [policy.PastCycle(r.batch_index, r.decision, bool(r.dataset_drift if r.shifted is None else r.shifted),
                             r.window_start, r.followup, r.batch, r.champion_version,
                             _fired(r, "outgrown reference"), _fired(r, "outgrown persistence"))
            for r in records]


@dataclass
class DecisionInputs:
    """What `decide` saw, besides the decision: recorded as they were."""

    decision: policy.Decision
    champion_age_days: float | None
    new_labelled_rows: int


@task(name="decide", cache_policy=NO_CACHE)
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
) -> DecisionInputs:
    age = champion_age_days(champion.trained_until, _batch_time(batch, rt.schema))
    new_labelled = labelled_since_champion(history, champion.version) + scoring.labelled_rows
    metric_value, metric_source, metric_index = scoring.metric, None, None
    if metric_value is None:
        late = late_measurement(history, champion.version)
        if late is not None:
            metric_value, metric_source, metric_index = late.metric, f"late labels of batch '{late.batch}'", \
                late.batch_index
    signals = policy.Signals(
        batch_index=index,
        valid=outcome.valid,
        critical_failures=outcome.failures,
        drift_share=drift.share if drift else None,
        drifted_features=drift.drifted_features if drift else (),
        metric=rt.metric,
        metric_value=metric_value,
        metric_source=metric_source,
        metric_batch_index=metric_index,
        reference_metric=champion.validation_metric,
        estimated_metric_value=scoring.estimate.value if scoring.estimate else None,
        ood_share=ood.share if ood else None,
        champion_age_days=age,
        champion_version=champion.version,
        new_labelled_rows=new_labelled,
        champion_refused=champion_refused,
    )
    decision = policy.decide(signals, _past_cycles(history), rt.config.policy, rt.config.training.window_batches)
    return DecisionInputs(decision, age, new_labelled)


# -- where the batch goes -------------------------------------------------------------------------
@task(name="quarantine batch", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def quarantine(rt: Runtime, path: str, name: str, outcome: ValidationOutcome) -> str:
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    return str(quarantine_files.quarantine_batch(Path(path), name, folder, outcome.result, outcome.summary(name)))


@task(name="remove rejected batch from landing", cache_policy=NO_CACHE)
def remove_landed(path: str, quarantined: str) -> None:
    quarantine_files.remove_landed(Path(path), Path(quarantined))


@task(name="split off rejected rows", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def split_off_rows(rt: Runtime, batch: BatchRead, name: str, outcome: ValidationOutcome) -> BatchRead:
    """Row-level quarantine: failing rows go to quarantine, the batch goes on with the rest only."""
    assert batch.frame is not None and outcome.rejected_rows is not None
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    quarantine_files.quarantine_rows(outcome.rejected_rows, name, folder, outcome.result, outcome.summary(name))
    kept = batch.frame.drop(index=outcome.rejected_rows.index)
    return BatchRead(kept, content_hash=batch.content_hash)


@task(name="accept batch", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def accept(rt: Runtime, index: int, name: str, batch: BatchRead) -> None:
    """Store an accepted batch typed as the champion's schema says (`schema.conform`), so that every
    training window's batches concatenate whatever types each file arrived with."""
    assert batch.frame is not None
    stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).add(index, name,
                                                                                 conform(batch.frame, rt.schema))


@task(name="save predictions", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def save_predictions(rt: Runtime, index: int, name: str, batch: BatchRead, scoring: Scoring) -> Path | None:
    """The champion's predictions by row id, kept so that labels arriving later can score them."""
    id_column = rt.schema.id_column
    if batch.frame is None or scoring.predictions is None or id_column is None or id_column not in batch.frame:
        return None
    rows = batch.frame.index
    frame = labels.prediction_frame(
        batch.frame[id_column], scoring.predictions.loc[rows],
        None if scoring.probabilities is None else scoring.probabilities.loc[rows], scoring.classes)
    return stores.PredictionStore(rt.config.storage.predictions_dir(rt.config.model.name)).add(index, name, frame)


@task(name="read labels", cache_policy=NO_CACHE)
def read_labels(rt: Runtime, path: str) -> labels.PreparedLabels:
    try:
        frame = batch_files.read_batch(Path(path))
    except batch_files.BatchReadError as exc:
        raise labels.LabelsError(f"{path}: {exc}") from None
    try:
        return labels.prepare_labels(frame, rt.schema)
    except labels.LabelsError as exc:
        raise labels.LabelsError(f"{path}: {exc}") from None


@dataclass
class LabelsOutcome:
    # Batch name -> rows newly labelled.
    batches: dict[str, int] = field(default_factory=dict)
    already_labelled: int = 0
    unmatched: int = 0
    unusable: int = 0
    duplicate_ids: int = 0
    kept_as: str | None = None

    def summary(self) -> str:
        parts = [f"{rows} row(s) of {name}" for name, rows in self.batches.items()] or ["no batch"]
        text = f"labelled {', '.join(parts)}"
        extra = [f"{self.already_labelled} already labelled (kept)" if self.already_labelled else "",
                 f"{self.unmatched} with an unknown id" if self.unmatched else "",
                 f"{self.unusable} without id or label" if self.unusable else "",
                 f"{self.duplicate_ids} duplicate id(s), the last line kept" if self.duplicate_ids else ""]
        extra = [e for e in extra if e]
        if extra:
            text += "; " + ", ".join(extra)
        if self.kept_as:
            text += f"; unused lines kept in {self.kept_as}"
        return text


@task(name="apply late labels", cache_policy=NO_CACHE)
def apply_labels(rt: Runtime, prepared: labels.PreparedLabels, source: str) -> LabelsOutcome:
    """Fill the accepted batches' missing targets, re-score what the champion of the time predicted,
    and update those batches' records (journal and MLflow run).

    Safe to run again after a crash: a record is re-scored whenever its batch's labelled rows
    differ from what it says, whether or not this run filled any.
    """
    schema, model = rt.schema, rt.config.model.name
    accepted = stores.AcceptedStore(rt.config.storage.accepted_dir(model)).paths()
    predictions = stores.PredictionStore(rt.config.storage.predictions_dir(model)).paths()
    recorded = {r.batch_index: r for r in journal.read_journal(rt.journal)}
    outcome = LabelsOutcome(unusable=len(prepared.unusable), duplicate_ids=prepared.duplicate_ids)
    matched: set[str] = set()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    updates: dict[int, dict[str, Any]] = {}
    for index, path in accepted.items():
        batch = pd.read_parquet(path)
        if schema.id_column not in batch.columns:
            continue
        joined = labels.join_labels(batch, prepared.labels, schema)
        matched |= joined.matched_ids
        outcome.already_labelled += joined.already_labelled
        if joined.newly_labelled:
            # Training windows read the accepted store: from now on they see these labels.
            stores.replace_file_atomically(path, lambda target: joined.frame.to_parquet(target, index=False))
            outcome.batches[path.stem.split("__", 1)[1]] = joined.newly_labelled
        record = recorded.get(index)
        if record is None or record.decision not in ("none", "retrain") or index not in predictions:
            continue
        metrics, rows = labels.batch_metrics(joined.frame, pd.read_parquet(predictions[index]), schema)
        if rows != record.labelled_rows:
            updates[index] = {"metrics": metrics, "metric": metrics.get(rt.metric.name), "labelled_rows": rows,
                              "late_labels_at": stamp}
    # Under the journal's lock, re-read: a cycle may have appended its line meanwhile.
    for record in journal.update_records(rt.journal, updates):
        if record.mlflow_run_id:
            _log_late_metrics(rt, record.mlflow_run_id, record.metrics, record.labelled_rows)
    unused = ~prepared.labels.index.isin(list(matched))
    outcome.unmatched = int(unused.sum())
    if outcome.unmatched or outcome.unusable:
        # Never dropped silently: labels for rows not seen yet (or never) wait in a file.
        folder = rt.config.storage.labels_dir(model)
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / f"unused-{stamp.replace(':', '')}-{Path(source).stem}.csv"
        unmatched = prepared.labels[unused].rename_axis(schema.id_column).reset_index()
        pd.concat([unmatched, prepared.unusable[[c for c in unmatched.columns if c in prepared.unusable]]],
                  ignore_index=True).to_csv(kept, index=False)
        outcome.kept_as = str(kept)
    return outcome


def _log_late_metrics(rt: Runtime, run_id: str, metrics: dict[str, float], rows: int) -> None:
    values = {"labelled_rows": float(rows), **{f"metric_{k}": v for k, v in metrics.items()}}
    if rt.metric.name in metrics:
        values["metric"] = metrics[rt.metric.name]
    log_late_metrics(rt.registry.client, run_id, values)


def history(rt: Runtime) -> list[BatchRecord]:
    return journal.read_journal(rt.journal)


def next_index(rt: Runtime, past: list[BatchRecord]) -> int:
    """The next batch's index, past both the journal and the accepted store.

    A cycle that stopped after accepting its batch but before its journal line must not
    hand its index to the next batch (two batches under one index would mix in training).
    """
    stored = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).indices()
    return max([r.batch_index for r in past] + stored + _ledger_indices(rt), default=-1) + 1


def _ledger_indices(rt: Runtime) -> list[int]:
    """Indices the monitor deployment's ledger handed out (a `retrainer run` beside it must not reuse one)."""
    if not rt.config.intake.landing:
        return []
    from retrainer.state.ledger import open_ledger

    entries = open_ledger(rt.config.ledger_url).entries(rt.config.model.name)
    return [e.batch_index for e in entries if e.batch_index is not None]


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


def _reproduction(rt: Runtime, frame: pd.DataFrame) -> dict[str, str]:
    """What it takes to make the same model again: the code that trained it, the seed, and a content
    hash of exactly the rows it was fitted on (the labelled rows of its window, typed as the accepted
    store keeps them: `init`'s delivered files and a retrain's stored window hash alike)."""
    from retrainer.build_info import git_commit, retrainer_version

    rows = conform(labelled_rows(frame, rt.schema).loc[:, [*rt.schema.features, rt.schema.target]], rt.schema)
    return {"seed": str(rt.config.training.seed), "training_rows": str(len(rows)), "training_rows_sha256": _sha256(rows),
            "retrainer_version": retrainer_version(), "git_commit": git_commit() or "unknown"}


def _sha256(frame: pd.DataFrame) -> str:
    """A content hash of a frame's rows (values and dtypes, not its index)."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def _digest(frame: pd.DataFrame) -> str:
    return _sha256(frame)[:16]


@dataclass
class TrainingWindow:
    train: pd.DataFrame
    holdout: pd.DataFrame
    batches: list[int]


@task(name="assemble training window", cache_policy=NO_CACHE)
def assemble_window(rt: Runtime, window_start: int, index: int) -> TrainingWindow:
    """Accepted batches from the change (at most `window_batches`), minus a holdout of the newest one."""
    first = max(window_start, index - rt.config.training.window_batches + 1)
    store = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name))
    batches = [i for i in store.indices() if first <= i <= index]
    # The holdout comes from the newest batch that has labels: the triggering batch, unless its
    # labels are late (then an earlier one, whose labels have arrived).
    labelled = [i for i in reversed(batches) if not labelled_rows(store.load(i, i), rt.schema).empty]
    if not labelled:
        raise TrainingError(f"no labelled rows in the training window (batches {first}..{index}): "
                            "labels may still be on their way (`retrainer labels`)")
    newest = labelled[0]
    older = pd.concat([store.load(i, i) for i in batches if i != newest], ignore_index=True) \
        if len(batches) > 1 else pd.DataFrame()
    rest, holdout = split_holdout(store.load(newest, newest), rt.schema, rt.config.training.holdout_fraction,
                                  rt.config.training.seed)
    window = pd.concat([older, rest], ignore_index=True) if not older.empty else rest
    return TrainingWindow(window, holdout, batches)


@task(name="train challenger", cache_policy=NO_CACHE)
def train_model(rt: Runtime, frame: pd.DataFrame) -> TrainedModel:
    return train(frame, rt.schema, rt.config.model.estimator, rt.config.training)


def _window_label(window: TrainingWindow) -> str:
    first, last = window.batches[0], window.batches[-1]
    return f"#{first}" if first == last else f"#{first}-#{last}"


@task(name="choose training window", cache_policy=NO_CACHE)
def choose_window(rt: Runtime, narrow: TrainingWindow, narrow_model: TrainedModel, full: TrainingWindow,
                  full_model: TrainedModel) -> tuple[TrainingWindow, TrainedModel, str]:
    """The challenger trained since the change against one trained on the full window, on the gate's
    holdout: the better goes on to the gate, and a line says why. A tie goes to the full window: as
    good where it is judged, and fitted on more rows.

    Both windows hold out the same rows of the same newest batch (same split, same seed), so the
    scores compare; the gate then judges the chosen one on those rows against the champion.
    """
    if _digest(full.holdout) != _digest(narrow.holdout):
        # Labels landed between the two reads and moved the newest labelled batch: no fair comparison.
        return narrow, narrow_model, "window comparison skipped: the two windows' holdouts differ"
    schema = rt.schema
    inputs = feature_frame(narrow.holdout, schema)
    candidates = [(full, full_model), (narrow, narrow_model)]
    best, scores = pick_candidate(schema.task, target_values(narrow.holdout, schema),
                                  [model.pipeline.predict(inputs) for _, model in candidates])
    window, model = candidates[best]
    note = (f"window {_window_label(window)} chosen: {rt.metric.name} {scores[best]:.4f} on the holdout "
            f"against {scores[1 - best]:.4f} trained on {_window_label(candidates[1 - best][0])}")
    return window, model, note


def _version_documents(trained: TrainedModel) -> dict[str, dict[str, Any]]:
    """JSON documents stored with a version: its confidence calibration, when it is a classifier."""
    if trained.validation_confidence is None or trained.validation_right is None:
        return {}
    estimator = fit_estimator(trained.validation_confidence, trained.validation_right)
    return {PERFORMANCE_ESTIMATOR: estimator.to_dict()} if estimator else {}


@task(name="register model version", cache_policy=NO_CACHE)
def register(
    rt: Runtime, trained: TrainedModel, frame: pd.DataFrame, alias: str, reasons: list[str], decision_id: str,
    extra_tags: dict[str, str] | None = None,
) -> ModelVersionInfo:
    schema = rt.schema
    reference = labelled_rows(frame, schema).loc[:, [*schema.features, schema.target]]
    # Late labels arrive as text classes while on-time batches may hold ints: one type for parquet.
    reference[schema.target] = target_values(reference, schema)
    metric = rt.metric
    reproduce = _reproduction(rt, frame)
    tags = {
        **reproduce,
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
        params={"estimator": trained.estimator, "features": ",".join(schema.features), "target": schema.target,
                **{f"training.{key}": value for key, value in rt.config.training.model_dump().items()},
                **reproduce},
        metrics={f"validation_{metric.name}": trained.validation_metric, "train_rows": trained.train_rows,
                 "validation_rows": trained.validation_rows},
        tags=tags,
        description=description,
        run_name=f"train-{decision_id}",
        documents=_version_documents(trained),
    )
    rt.registry.move_alias(alias, info.version, "retrainer", f"decision {decision_id}: {'; '.join(reasons)}")
    return info


LATENCY_ROUNDS = 5


def _serving_costs(champion: Any, challenger: Any, inputs: pd.DataFrame) -> ModelCosts:
    """Prediction time per 1,000 rows and pickled size. The two models take turns, best of
    LATENCY_ROUNDS each: a burst of load on a shared worker then slows both rather than one (CI saw
    a 3× ratio from three back-to-back runs of one model caught by other processes)."""
    best = {"champion": float("inf"), "challenger": float("inf")}
    for _ in range(LATENCY_ROUNDS):
        for role, model in (("champion", champion), ("challenger", challenger)):
            started = time.perf_counter()
            model.predict(inputs)
            best[role] = min(best[role], time.perf_counter() - started)
    per_1k = 1000 / max(len(inputs), 1)
    return ModelCosts(best["champion"] * per_1k, best["challenger"] * per_1k, len(pickle.dumps(champion)),
                      len(pickle.dumps(challenger)))


@task(name="evaluate champion vs challenger", cache_policy=NO_CACHE)
def evaluate(rt: Runtime, champion: ModelVersionInfo, challenger: ModelVersionInfo, window: TrainingWindow) -> GateVerdict:
    """Both models on the same held-out rows (digest tagged on both versions); the gate decides."""
    schema, settings = rt.schema, rt.config.promotion
    holdout = window.holdout
    inputs = feature_frame(holdout, schema)
    champion_model = rt.registry.load_model(champion)
    challenger_model = rt.registry.load_model(challenger)
    baseline = train_baseline(window.train, schema).predict(inputs) if settings.baseline else None
    verdict = gate(
        schema.task,
        target_values(holdout, schema),
        champion_model.predict(inputs),
        challenger_model.predict(inputs),
        settings,
        seed=rt.config.training.seed,
        slices={column: holdout[column].to_numpy() if column in holdout.columns else None
                for column in settings.slices},
        baseline_predictions=baseline,
        costs=_serving_costs(champion_model, challenger_model, inputs),
    )
    digest = _digest(holdout)
    # The same digest on both: a comparison is only ever between scores on the same rows.
    for version in (champion.version, challenger.version):
        rt.registry.tag_version(version, "holdout_digest", digest)
    rt.registry.tag_version(challenger.version, "gate", "passed" if verdict.passed else "failed")
    # Which champion the verdict is about: approving it later only makes sense against that one.
    rt.registry.tag_version(challenger.version, "gate_champion", champion.version)
    rt.registry.describe_version(challenger.version, verdict.summary())
    return verdict


@dataclass
class Promotion:
    promoted: bool
    # Why a passing challenger was not promoted: another promotion moved @champion first.
    conflict: str | None = None


@task(name="promote", cache_policy=NO_CACHE)
def promote(rt: Runtime, challenger: ModelVersionInfo, champion: ModelVersionInfo, verdict: GateVerdict) -> Promotion:
    """auto: a passing gate moves @champion; manual: the version waits for a person.

    One promotion of a model at a time (the promotion lock), and only if @champion is still the
    version the challenger was judged against (compare-and-set): otherwise the verdict is stale.
    """
    if not verdict.passed:
        return Promotion(False)
    if rt.config.promotion.mode == "manual":
        rt.registry.tag_version(challenger.version, "awaiting-approval", "true")
        return Promotion(False)
    reason = (f"gate passed: {verdict.metric_name} {verdict.champion_metric:.4f} -> "
              f"{verdict.challenger_metric:.4f}, interval [{verdict.ci_low:+.4f}, {verdict.ci_high:+.4f}]")
    try:
        with promotion_lock(rt.config):
            previous = rt.registry.version_by_alias(rt.config.mlflow.aliases.previous_champion)
            rt.registry.promote(challenger.version, expected_champion=champion.version, actor="retrainer (auto)",
                                reason=reason)
    except PromotionConflict as exc:
        return Promotion(False, str(exc))
    # What the rollback hook needs to put the aliases back, should a later step of the transaction fail.
    transaction = get_transaction()
    if transaction is not None:
        transaction.set("undo", {"config_path": str(rt.config_path), "promoted": challenger.version,
                                 "champion_before": champion.version,
                                 "previous_before": previous.version if previous else None})
    return Promotion(True)


@promote.on_rollback
def _undo_promotion(transaction: Any) -> None:
    """The transaction around a promotion failed after @champion moved: put the aliases back."""
    undo = transaction.get("undo", None)
    if not undo:
        return
    rt = runtime(undo["config_path"])
    with promotion_lock(rt.config):
        restored = rt.registry.undo_promotion(undo["promoted"], undo["champion_before"], undo["previous_before"],
                                              actor="retrainer (transaction rollback)",
                                              reason=f"checks after promoting version {undo['promoted']} failed")
    if restored:
        rt.registry.tag_version(undo["promoted"], "gate", "failed-after-promotion")


class PromotionCheckFailed(Exception):
    """The new @champion did not load or predict as served; the promotion is rolled back."""


@task(name="load the served champion", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def load_served_model(rt: Runtime, champion: ModelVersionInfo) -> Any:
    """The champion loaded afresh from the store, as a serving process loads it (a store that did not
    answer is asked again before the check judges)."""
    return rt.registry.load_model(champion, fresh=True)


@task(name="check the new champion", cache_policy=NO_CACHE)
def verify_promotion(rt: Runtime, challenger: ModelVersionInfo, promotion: Promotion, window: TrainingWindow) -> None:
    """After a promotion, load @champion from the store as a serving process would and predict the
    holdout: a model that does not load or gives non-finite outputs must not stay @champion."""
    if not promotion.promoted:
        return
    try:
        champion = rt.registry.champion()
    except Exception as exc:
        # Not knowing is no evidence against the new champion: keep the promotion, say so.
        logging.getLogger("retrainer").warning("retrainer: warning: could not check the new @champion: %s", exc)
        return
    if champion is None or champion.version != challenger.version:
        return  # moved on since (a person, or a later promotion): not this transaction's to check
    inputs = feature_frame(window.holdout, rt.schema)
    try:
        model: Any = load_served_model(rt, champion)
        predictions = np.asarray(model.predict(inputs))
    except Exception as exc:
        raise PromotionCheckFailed(f"@champion (version {champion.version}) does not serve: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if len(predictions) != len(inputs) or (predictions.dtype.kind in "fc" and not np.isfinite(predictions).all()):
        raise PromotionCheckFailed(f"@champion (version {champion.version}) gave unusable predictions")


def after_rollback(rt: Runtime, challenger: ModelVersionInfo, failure: str) -> tuple[Promotion, str]:
    """What a failed check left: the rollback hook restored @champion, or it could not (then say so)."""
    try:
        champion = rt.registry.champion()
    except Exception as exc:
        return Promotion(False), f"{failure}; whether @champion was restored is unknown ({exc})"
    if champion is not None and champion.version == challenger.version:
        return Promotion(True), f"{failure}; the rollback did NOT restore @champion: it is still version " \
                                f"{challenger.version}"
    return Promotion(False), f"{failure}; @champion restored to version {champion.version if champion else '-'}"


# -- first champion ---------------------------------------------------------------------------
@task(name="check not initialised", cache_policy=NO_CACHE)
def refuse_if_initialised(rt: Runtime) -> None:
    rt.registry.refuse_if_initialised()


@task(name="combine batches", cache_policy=NO_CACHE)
def combine(reads: list[BatchRead]) -> pd.DataFrame:
    frames = [read.frame for read in reads if read.frame is not None]
    if len(frames) < len(reads):
        raise batch_files.BatchReadError(next(f"{read.error}" for read in reads if read.frame is None))
    return pd.concat(frames, ignore_index=True)


@task(name="draft suite", cache_policy=NO_CACHE)
def draft(rt: Runtime, frame: pd.DataFrame, replace: bool = False) -> bool:
    """Draft the suite from the first champion's data, unless a suite is there already (a data
    engineer's edits are never overwritten unless `replace`). Returns whether it drafted."""
    path = rt.config.suite_path
    if path.exists() and not replace:
        print(f"kept the existing suite {path} (init --force drafts a new one over it)")
        return False
    save_suite(draft_suite(frame, rt.schema, rt.config.model.name), path)
    return True


# -- the record -------------------------------------------------------------------------------
@task(name="save out-of-distribution rows", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def save_ood_rows(rt: Runtime, ood: OodResult | None, batch: BatchRead, folder_name: str) -> list[Path]:
    """The batch's most unusual rows as delivered (id and time included), for a person to review."""
    if ood is None or ood.top_rows.empty or batch.frame is None:
        return []
    folder = rt.config.storage.model_dir(rt.config.model.name) / "reports" / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "out_of_distribution_rows.csv"
    rows = batch.frame.loc[ood.top_rows.index]
    rows.insert(0, "novelty_score", ood.top_rows["novelty_score"])
    rows.to_csv(path, index=False)
    return [path]


@task(name="render drift report", cache_policy=NO_CACHE, **STORAGE_RETRIES)
def render_report(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, drift: DriftResult | None,
                  retraining: bool, folder_name: str) -> list[Path]:
    """Evidently's full report, only when someone will read it (see DriftSettings.render_report)."""
    if drift is None or batch.frame is None or not report_wanted(rt.config.drift, drift, retraining):
        return []
    reference, _, _ = _reference_inputs(rt, champion)
    folder = rt.config.storage.model_dir(rt.config.model.name) / "reports" / folder_name
    current = feature_frame(sample(batch.frame, rt.config.drift.sample_size), rt.schema)
    return render_drift_report(reference, current, rt.schema, rt.config.drift,
                               rt.config.policy.drift_share_threshold, folder)


def _not_refused(task: Any, task_run: Any, state: State) -> bool:
    # A webhook that answered 4xx/5xx will answer the same again; one that did not answer may not.
    return not isinstance(state.result(raise_on_failure=False), webhooks.NotificationError)


@task(name="notify", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1.0, 5.0],
      retry_condition_fn=_not_refused)
def notify(rt: Runtime, record: BatchRecord, events: list[str] | None = None) -> int | None:
    """POST the decision record to the webhook when its outcome (or `events`) is one people asked to hear about."""
    events = webhooks.wanted(rt.config.notifications, record, events)
    if not events:
        return None
    url = rt.config.notifications.webhook_url
    assert url is not None
    return webhooks.post(url, webhooks.payload(rt.config.model.name, events, record),
                              rt.config.notifications.timeout_seconds)


@task(name="push metrics", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1.0, 5.0])
def push_metrics(rt: Runtime, record: BatchRecord, past: list[BatchRecord]) -> int:
    """The cycle's metrics to the Pushgateway, when one is configured; returns how many were pushed."""
    settings = rt.config.observability
    if not settings.pushgateway_url:
        return 0
    samples = cycle_samples(record, past, settings, rt.schema.features, datetime.now(timezone.utc).timestamp())
    push_cycle(settings.pushgateway_url, settings.job, rt.config.model.name, samples, settings.timeout_seconds)
    return len(samples)


@task(name="log cycle", cache_policy=NO_CACHE)
def log_cycle_json(rt: Runtime, record: BatchRecord) -> None:
    """One JSON line per cycle for log shippers, when `observability.json_log` says where."""
    target = rt.config.observability.json_log
    if target:
        write_cycle_log(target, rt.config.storage.workdir, cycle_log_line(rt.config.model.name, record))


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
        _cycle_artifacts(rt, record, outcome, drift, files, run_id)
    record = record.model_copy(update={"mlflow_run_id": run_id, "stage_seconds": timer.rounded()})
    journal.append_record(record, rt.journal)
    return record


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


def _metric_key(name: str) -> str:
    # MLflow metric names allow letters, digits, and _ - . / and space.
    return re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", name)


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
        lines.append(f"- challenger v{record.challenger_version}: "
                     f"{'promoted to @champion' if record.promoted else 'not promoted'}")
    return "\n".join(lines)


# -- retrains requested by event, and their approval ------------------------------------------
RETRAIN_REQUESTED = "retrainer.retrain.requested"


def model_resource(model: str) -> dict[str, str]:
    """The Prefect event resource of a model: what the retrain deployment's trigger matches on."""
    return {"prefect.resource.id": f"retrainer.model.{model}", "prefect.resource.name": model}


@task(name="request retrain", cache_policy=NO_CACHE)
def request_retrain(rt: Runtime, batch_index: int, window_start: int, decision_id: str,
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


def request_recorded_retrain(rt: Runtime, record: BatchRecord) -> BatchRecord:
    """Ask for the retrain a recorded cycle decided, and note the event on its record."""
    window_start = record.window_start if record.window_start is not None else 0  # Decision.training_start
    event_id = request_retrain(rt, record.batch_index, window_start, record.decision_id, record.reasons)
    updated = journal.update_records(rt.journal, {record.batch_index: {"retrain_event_id": event_id}})
    return next((r for r in updated if r.decision_id == record.decision_id),
                record.model_copy(update={"retrain_event_id": event_id}))


@task(name="find earlier retrain", cache_policy=NO_CACHE)
def earlier_retrain(rt: Runtime, batch_index: int, decision_id: str) -> dict[str, Any] | None:
    """The outcome of this request if it was carried out already (an event delivered twice, a re-run)."""
    for record in journal.read_journal(rt.journal):
        if record.batch_index == batch_index and record.decision_id == decision_id and (
                record.challenger_version or record.retrain_error):
            return {"challenger_version": record.challenger_version, "promoted": record.promoted,
                    "new_champion_version": record.new_champion_version, "retrain_error": record.retrain_error,
                    "already_done": True}
    return None


@task(name="record retrain outcome", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=READ_RETRY_DELAYS,
      retry_condition_fn=_transient)
def record_retrain(rt: Runtime, batch_index: int, decision_id: str, outcome: dict[str, Any]) -> BatchRecord | None:
    """Write a retrain's outcome into the record of the cycle that asked for it (journal and its MLflow
    run). A staleness check's request has no cycle record: its outcome is in the registry only."""
    fields: dict[str, Any] = {key: outcome.get(key) for key in ("challenger_version", "promoted", "new_champion_version",
                                                 "retrain_error", "promotion_conflict", "gate",
                                                 "promotion_rolled_back", "approval") if key in outcome}
    fields["promoted"] = bool(outcome.get("promoted"))
    matching = [r for r in journal.read_journal(rt.journal) if r.batch_index == batch_index and r.decision_id == decision_id]
    if not matching:
        return None
    updated = journal.update_records(rt.journal, {batch_index: fields})
    record = updated[0] if updated else None
    if record is not None and record.mlflow_run_id:
        tags = {"retrainer.promoted": str(record.promoted).lower()}
        if record.challenger_version:
            tags["retrainer.challenger_version"] = record.challenger_version
        if record.retrain_error:
            tags["retrainer.retrain_error"] = record.retrain_error[:5000]
        tag_run(rt.registry.client, record.mlflow_run_id, tags)
    return record


@dataclass
class ApprovalAnswer:
    approve: bool
    comment: str


@task(name="apply approval", cache_policy=NO_CACHE)
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
    commands = RegistryCommands(rt.config, rt.registry, promotion_lock)
    try:
        commands.promote(version, f"approved in the Prefect UI: {comment}", force=False,
                         actor="Prefect UI approval")
    except (RegistryError, PromotionConflict, LockTimeout) as exc:
        return {"approval": f"approved, not promoted: {exc}"}
    return {"approval": f"approved: {comment}", "promoted": True, "new_champion_version": version}


@dataclass
class StalenessCheck:
    reason: str | None
    summary: str
    batch_index: int = 0
    window_start: int = 0


@task(name="check staleness", cache_policy=NO_CACHE)
def check_staleness(rt: Runtime, champion: ModelVersionInfo) -> StalenessCheck:
    """The champion's age on the wall clock and the labelled rows since its training window."""
    age = champion_age_days(champion.trained_until, datetime.now(timezone.utc))
    new_labelled = labelled_since_champion(history(rt), champion.version)
    stored = stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).indices()
    limit = rt.config.policy.max_champion_age_days
    summary = (f"champion v{champion.version}: age {'-' if age is None else f'{age:.1f}'} d "
               f"(limit {'-' if limit is None else f'{limit:g}'} d), {new_labelled} labelled row(s) since its training")
    reason = policy.staleness_retrain(age, new_labelled, rt.config.policy)
    if reason is None or not stored:
        return StalenessCheck(None, summary + ("" if stored else "; no accepted batch to train on"))
    last = stored[-1]
    return StalenessCheck(reason, summary, last, max(stored[0], last - rt.config.training.window_batches + 1))
