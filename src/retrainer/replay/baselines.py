"""The retraining recipes people use instead of a policy, replayed on the same stream as the
configured policy so the two can be compared (`retrainer backtest --baselines`).

- `never`: the first model serves the whole stream;
- `every-k`: retrain every k batches (a cron job);
- `every-batch`: retrain on every batch;
- `drift-trigger`: retrain when Evidently's `DataDriftPreset` reports dataset drift of the batch
  against the model's training data (the common tutorial recipe).

Like the hand-rolled jobs they stand for, they validate nothing and promote every model they
train: a retrain trains on the last `training.window_batches` batches, whatever they hold. They
share everything else with the configured policy — the same first model (same estimator, data and
seed), the same training code and metric — so the difference measured is the policy's alone.
They run in this process, without Prefect or MLflow: they are what users run instead of those.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from retrainer.config import RetrainerConfig
from retrainer.core.metrics import MetricError, MetricSpec, configured_metric, measure
from retrainer.core.schema import BatchSchema, feature_frame, has_labels, schema_from_settings, target_values
from retrainer.core.training import TrainingError, labelled_rows, model_outputs, train
from retrainer.data.batches import BatchReadError, batch_name, read_batch
from retrainer.monitoring import preset_dataset_drift
from retrainer.replay.comparison import BatchOutcome, PolicyRun

BaselineKind = Literal["never", "every-k", "every-batch", "drift-trigger"]
BASELINE_KINDS: tuple[BaselineKind, ...] = ("never", "every-k", "every-batch", "drift-trigger")


@dataclass(frozen=True)
class Baseline:
    """One baseline recipe: its kind, and how many batches apart every-k retrains (`k`)."""

    kind: BaselineKind
    k: int = 5

    @property
    def name(self) -> str:
        """The baseline's name in the comparison: `every-<k>` for every-k, its kind otherwise."""
        return f"every-{self.k}" if self.kind == "every-k" else self.kind

    def due(self, position: int) -> bool:
        """Whether a scheduled retrain falls on the `position`-th batch after the first model (1-based)."""
        return self.kind == "every-batch" or (self.kind == "every-k" and position % self.k == 0)


def default_baselines(k: int) -> list[Baseline]:
    """The four baselines (never, every-k, every-batch, drift-trigger), every-k with `k`."""
    return [Baseline("never"), Baseline("every-k", k), Baseline("every-batch"), Baseline("drift-trigger")]


@dataclass
class _State:
    baseline: Baseline
    model: Any
    # What the serving model was trained on: the drift trigger's reference.
    reference: pd.DataFrame
    outcomes: list[BatchOutcome]
    seconds: float = 0.0


def _score(model: Any, frame: pd.DataFrame | None, schema: BatchSchema, metric: MetricSpec) -> tuple[float | None, str]:
    if frame is None:
        return None, "unreadable"
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        return None, f"cannot score: missing {', '.join(missing)}"
    rows = labelled_rows(frame, schema)
    if rows.empty:
        return None, "no labels"
    try:
        outputs = model_outputs(model, feature_frame(rows, schema), schema.task)
        value = measure(metric, schema.task, target_values(rows, schema), outputs)
    except (ValueError, TypeError, MetricError) as exc:
        return None, f"cannot score: {str(exc).splitlines()[0]}"
    return (value, "") if np.isfinite(value) else (None, f"{metric.name} cannot be measured on this batch")


def _drifted(state: _State, frame: pd.DataFrame, schema: BatchSchema) -> tuple[bool, str]:
    try:
        drift = preset_dataset_drift(state.reference, frame, schema)
    except (KeyError, ValueError, TypeError) as exc:
        # The tutorial job would crash here; it retrains nothing until the next batch.
        return False, f"drift report failed: {str(exc).splitlines()[0]}"
    return drift.dataset_drift, f"drift share {drift.share:.2f}"


def run_baselines(
    config: RetrainerConfig,
    initial: list[Path],
    later: list[Path],
    rejected: set[str],
    baselines: list[Baseline],
) -> list[PolicyRun]:
    """Replay `later` (after the first model trained on `initial`) under each baseline.

    `rejected`: names of batches the configured policy's suite rejected, to count the retrains
    that trained on them. Each batch file is read once for all baselines."""
    schema = schema_from_settings(config.model)
    initial_frames = [(batch_name(p), read_batch(p)) for p in initial]
    first = pd.concat([frame for _, frame in initial_frames], ignore_index=True)
    started = time.perf_counter()
    metric = configured_metric(config.model, schema.task)
    model = train(first, schema, config.model.estimator, config.training, metric).pipeline
    setup = time.perf_counter() - started
    states = [_State(b, model, first, [], setup) for b in baselines]
    window: deque[tuple[str, pd.DataFrame]] = deque(initial_frames, maxlen=config.training.window_batches)
    for position, path in enumerate(later, start=1):
        name = batch_name(path)
        try:
            frame: pd.DataFrame | None = read_batch(path)
        except BatchReadError:
            frame = None
        if frame is not None and has_labels(frame, schema):
            window.append((name, frame))
        for state in states:
            started = time.perf_counter()
            state.outcomes.append(_step(state, position, name, frame, list(window), rejected, schema, config))
            state.seconds += time.perf_counter() - started
    return [PolicyRun(s.baseline.name, s.outcomes, s.seconds) for s in states]


def _step(state: _State, position: int, name: str, frame: pd.DataFrame | None,
          window: list[tuple[str, pd.DataFrame]], rejected: set[str], schema: BatchSchema,
          config: RetrainerConfig) -> BatchOutcome:
    metric = configured_metric(config.model, schema.task)
    value, note = _score(state.model, frame, schema, metric)
    due = state.baseline.due(position)
    if state.baseline.kind == "drift-trigger" and frame is not None:
        due, note = _drifted(state, frame, schema)
    if not due:
        return BatchOutcome(name, value, note=note)
    # The window: the latest labelled batches, this one included when it has labels.
    training = pd.concat([f for _, f in window], ignore_index=True)
    on_rejected = any(batch in rejected for batch, _ in window)
    try:
        state.model = train(training, schema, config.model.estimator, config.training, metric).pipeline
    except (TrainingError, KeyError, ValueError, TypeError) as exc:
        # A job whose training step fails keeps its model; a retrain was still attempted.
        return BatchOutcome(name, value, retrained=True, trained_on_rejected=False,
                            note=f"retrain failed: {str(exc).splitlines()[0]}")
    state.reference = training
    return BatchOutcome(name, value, retrained=True, promoted=True, trained_on_rejected=on_rejected, note=note)
