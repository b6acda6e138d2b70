"""Prefect tasks: each does one named step of a cycle by calling the library modules.

Tasks hold no decision logic (that is `policy` and `evaluation`) and flows hold no logic at
all: they wire these tasks. Caching is off on purpose: a batch is processed once, in order,
and the journal, not Prefect's cache, is the record of what was done.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrainer import data, policy
from retrainer.config import ModelSettings, RetrainerConfig, load_config
from retrainer.evaluation import GateVerdict, gate
from retrainer.metrics import primary_metric, score
from retrainer.monitoring import DriftResult, champion_age_days, compute_drift, render_drift_report
from retrainer.records import BatchRecord
from retrainer.registry import ModelRegistry, ModelVersionInfo, RegistryError, connect, log_cycle
from retrainer.schema import (
    BatchSchema,
    feature_frame,
    has_labels,
    infer_schema,
    schema_from_settings,
    target_values,
)
from retrainer.training import TrainedModel, labelled_rows, split_holdout, train
from retrainer.validation import ValidationOutcome, draft_suite, save_suite, validate_batch

step = functools.partial(task, cache_policy=NO_CACHE)


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
    def journal(self) -> Path:
        return self.config.storage.timeline_path(self.config.model.name)


def _with_saved_columns(config: RetrainerConfig) -> RetrainerConfig:
    """Fill inferred column settings from what `retrainer init` saved, when the file leaves them out."""
    model = config.model
    saved = config.storage.model_dir(model.name) / "model_settings.json"
    if (model.task is None or model.features is None or model.categorical is None) and saved.exists():
        return config.model_copy(update={"model": ModelSettings.model_validate_json(saved.read_text(encoding="utf-8"))})
    return config


@functools.lru_cache(maxsize=8)
def _runtime(config_path: str, modified: float) -> Runtime:
    config = _with_saved_columns(load_config(config_path))
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

    @property
    def rows(self) -> int:
        return 0 if self.frame is None else len(self.frame)


@step(name="read batch")
def read_batch(path: str) -> BatchRead:
    try:
        return BatchRead(data.read_batch(Path(path)))
    except data.BatchReadError as exc:
        return BatchRead(None, str(exc))


@step(name="find champion")
def find_champion(rt: Runtime) -> ModelVersionInfo:
    champion = rt.registry.champion()
    if champion is None:
        raise RegistryError(
            f"model '{rt.registry.name}' has no @{rt.config.mlflow.aliases.champion}: run `retrainer init` first"
        )
    return champion


@dataclass
class Scoring:
    predictions: np.ndarray | None = None
    metric: float | None = None
    labelled_rows: int = 0


@step(name="score batch")
def score_batch(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> Scoring:
    """The champion's predictions and, when labels are present, its metric — before labels are used."""
    schema = rt.schema
    if batch.frame is None or any(c not in batch.frame.columns for c in schema.features):
        return Scoring()
    model = rt.registry.load_model(champion)
    inputs = feature_frame(batch.frame, schema)
    predictions = np.asarray(model.predict(inputs))
    if not has_labels(batch.frame, schema):
        return Scoring(predictions)
    labelled = batch.frame[schema.target].notna().to_numpy()
    metric = score(schema.task, target_values(batch.frame, schema)[labelled], predictions[labelled])
    return Scoring(predictions, metric, int(labelled.sum()))


# -- validation, drift, decision ----------------------------------------------------------------
@step(name="validate batch")
def validate(rt: Runtime, batch: BatchRead) -> ValidationOutcome:
    if batch.frame is None:
        return ValidationOutcome(valid=False, failures=[f"unreadable: {batch.error}"], result={"read_error": batch.error})
    return validate_batch(batch.frame, rt.schema, rt.config.suite_path)


def _reference_inputs(rt: Runtime, champion: ModelVersionInfo) -> tuple[pd.DataFrame, np.ndarray]:
    if champion.version not in rt.reference_inputs:
        reference = feature_frame(rt.registry.load_reference(champion), rt.schema)
        predictions = np.asarray(rt.registry.load_model(champion).predict(reference))
        rt.reference_inputs = {champion.version: (reference, predictions)}
    return rt.reference_inputs[champion.version]


@step(name="measure drift")
def measure_drift(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> DriftResult:
    """Drift against the champion's own training data (train/serve skew), features and predictions."""
    assert batch.frame is not None
    reference, reference_predictions = _reference_inputs(rt, champion)
    return compute_drift(
        reference, feature_frame(batch.frame, rt.schema), rt.schema, rt.config.drift,
        rt.config.policy.drift_share_threshold, reference_predictions, scoring.predictions,
    )


def _batch_time(batch: BatchRead, schema: BatchSchema) -> datetime:
    if batch.frame is not None and schema.time_column and schema.time_column in batch.frame.columns:
        times = pd.to_datetime(batch.frame[schema.time_column], errors="coerce", utc=True).dropna()
        if not times.empty:
            return times.max().floor("us").to_pydatetime()
    return datetime.now(timezone.utc)


def _past_cycles(records: list[BatchRecord]) -> list[policy.PastCycle]:
    return [policy.PastCycle(r.batch_index, r.decision, bool(r.dataset_drift)) for r in records]


@step(name="decide")
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
        metric=primary_metric(rt.schema.task),
        metric_value=scoring.metric,
        reference_metric=champion.validation_metric,
        champion_age_days=champion_age_days(champion.trained_until, _batch_time(batch, rt.schema)),
        labelled_rows=scoring.labelled_rows,
    )
    return policy.decide(signals, _past_cycles(history), rt.config.policy)


# -- where the batch goes -------------------------------------------------------------------------
@step(name="quarantine batch")
def quarantine(rt: Runtime, path: str, name: str, outcome: ValidationOutcome) -> str:
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    return str(data.quarantine_batch(Path(path), name, folder, outcome.result, outcome.summary(name)))


@step(name="accept batch")
def accept(rt: Runtime, index: int, name: str, batch: BatchRead) -> None:
    assert batch.frame is not None
    data.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).add(index, name, batch.frame)


def history(rt: Runtime) -> list[BatchRecord]:
    return data.read_journal(rt.journal)


# -- training, evaluation, promotion ----------------------------------------------------------
def _window_tags(schema: BatchSchema, frame: pd.DataFrame) -> dict[str, str]:
    if schema.time_column and schema.time_column in frame.columns:
        times = pd.to_datetime(frame[schema.time_column], errors="coerce", utc=True).dropna()
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


@step(name="assemble training window")
def assemble_window(rt: Runtime, window_start: int, index: int) -> TrainingWindow:
    """Accepted batches from the change (at most `window_batches`), minus a holdout of the newest one."""
    first = max(window_start, index - rt.config.training.window_batches + 1)
    store = data.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name))
    older = store.load(first, index - 1)
    newest = store.load(index, index)
    rest, holdout = split_holdout(newest, rt.schema, rt.config.training.holdout_fraction, rt.config.training.seed)
    window = pd.concat([older, rest], ignore_index=True) if not older.empty else rest
    return TrainingWindow(window, holdout, [i for i in store.indices() if first <= i <= index])


@step(name="train challenger")
def train_model(rt: Runtime, frame: pd.DataFrame) -> TrainedModel:
    return train(frame, rt.schema, rt.config.model.estimator, rt.config.training)


@step(name="register model version")
def register(
    rt: Runtime, trained: TrainedModel, frame: pd.DataFrame, alias: str, reasons: list[str], decision_id: str,
    extra_tags: dict[str, str] | None = None,
) -> ModelVersionInfo:
    schema = rt.schema
    reference = labelled_rows(frame, schema).loc[:, [*schema.features, schema.target]]
    metric = primary_metric(schema.task)
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
        metrics={f"validation_{metric.name}": trained.validation_metric, "train_rows": trained.train_rows},
        tags=tags,
        description=description,
        run_name=f"train-{decision_id}",
    )
    rt.registry.set_alias(alias, info.version)
    return info


@step(name="evaluate champion vs challenger")
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


@step(name="promote")
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
@step(name="initialise champion")
def initialise(rt: Runtime, frame: pd.DataFrame, decision_id: str) -> ModelVersionInfo:
    trained = train(frame, rt.schema, rt.config.model.estimator, rt.config.training)
    info = register.fn(rt, trained, frame, rt.config.mlflow.aliases.champion, ["initial champion"], decision_id)
    return info


@step(name="draft suite")
def draft(rt: Runtime, frame: pd.DataFrame) -> str:
    path = rt.config.suite_path
    save_suite(draft_suite(frame, rt.schema, rt.config.model.name), path)
    return str(path)


def resolve_settings_from(frame: pd.DataFrame, config: RetrainerConfig) -> RetrainerConfig:
    """The config with every inferred column setting written out (task, features, categorical, id, time)."""
    from retrainer.schema import complete_settings

    schema = infer_schema(frame, config.model)
    return config.model_copy(update={"model": complete_settings(config.model, schema)})


# -- the record -------------------------------------------------------------------------------
@step(name="render drift report")
def render_report(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, folder: Path) -> list[Path]:
    assert batch.frame is not None
    reference, _ = _reference_inputs(rt, champion)
    return render_drift_report(reference, feature_frame(batch.frame, rt.schema), rt.schema, rt.config.drift, folder)


@step(name="record cycle")
def record_cycle(
    rt: Runtime, record: BatchRecord, outcome: ValidationOutcome, drift: DriftResult | None, files: list[Path]
) -> BatchRecord:
    """One MLflow run per cycle with the decision record as an artifact, and the journal line."""
    metrics = {
        "rows": float(record.rows),
        "valid": float(record.valid),
        "drift_share": record.drift_share,
        "prediction_drift": record.prediction_drift,
        "metric": record.metric,
        **{f"seconds_{k}": v for k, v in record.stage_seconds.items()},
    }
    documents: dict[str, Any] = {"validation_result.json": outcome.result or {"failures": outcome.failures}}
    if drift is not None:
        documents["drift.json"] = drift.to_dict()
    if record.gate is not None:
        documents["gate.json"] = record.gate
    run_id = log_cycle(
        rt.registry.client,
        rt.config,
        run_name=f"batch-{record.batch}",
        params={"batch": record.batch, "batch_index": record.batch_index, "champion_version": record.champion_version},
        metrics={k: v for k, v in metrics.items() if v is not None},
        tags={
            "retrainer.decision": record.decision,
            "retrainer.decision_id": record.decision_id,
            "retrainer.reasons": "; ".join(record.reasons)[:5000],
        },
        documents={**documents, "decision_record.json": json.loads(record.model_dump_json())},
        files=files,
    )
    record = record.model_copy(update={"mlflow_run_id": run_id})
    data.append_record(record, rt.journal)
    return record

