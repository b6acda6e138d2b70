"""What a cycle works with: the runtime of a config file (config, schema, registry, caches,
the promotion lock), decision ids, the journal's history and the next batch index."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrainer.config import RetrainerConfig, load_config
from retrainer.core.metrics import MetricSpec, configured_metric
from retrainer.core.records import BatchRecord
from retrainer.core.schema import (
    BatchSchema,
    schema_from_settings,
)
from retrainer.monitoring import (
    NoveltyModel,
    check_stattests,
)
from retrainer.registry import (
    ModelRegistry,
    connect,
)
from retrainer.state import journal, stores
from retrainer.state.locks import LockTimeout, promotion_lock

PromotionLock = Callable[..., AbstractContextManager[None]]


@dataclass
class Runtime:
    """Everything a cycle needs that outlives one cycle: config, schema, registry and caches."""

    config_path: Path
    config: RetrainerConfig
    registry: ModelRegistry
    # The model's promotion lock: `state.locks.promotion_lock`, or the pipeline's, which adds the
    # Prefect slot (`pipeline.concurrency`).
    lock: PromotionLock = promotion_lock
    # Per champion version: the reference as model input, the champion's predictions on it,
    # and the reference's labels.
    reference_inputs: dict[str, tuple[pd.DataFrame, np.ndarray, pd.Series]] = field(default_factory=dict)
    # Per champion version: the reference's columns that grow with time (drift does not count them).
    growing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Per champion version: the isolation forest fitted on its training data.
    novelty: dict[str, NoveltyModel] = field(default_factory=dict)

    @property
    def schema(self) -> BatchSchema:
        """The batch schema of the config's model settings."""
        return schema_from_settings(self.config.model)

    @functools.cached_property
    def metric(self) -> MetricSpec:
        """The primary metric: `model.metric`, or the task's default (imported once per runtime, which is rebuilt
        when the config file changes)."""
        return configured_metric(self.config.model, self.schema.task)

    @property
    def journal(self) -> Path:
        """The model's journal: the file of its decision records."""
        return self.config.storage.timeline_path(self.config.model.name)


@functools.lru_cache(maxsize=8)
def _runtime(config_path: str, modified: float, lock: PromotionLock) -> Runtime:
    config = stores.with_saved_columns(load_config(config_path))
    check_stattests(config.drift, config_path)
    client = connect(config)
    built = Runtime(Path(config_path), config, ModelRegistry(client, config), lock)
    if config.model.task is not None:
        built.metric  # noqa: B018 (a misnamed model.metric fails here, in one line, not halfway through a cycle)
    return built


def runtime(config_path: str | Path, lock: PromotionLock = promotion_lock) -> Runtime:
    """The runtime of a config file, rebuilt when the file changes (an edit applies next cycle)."""
    path = Path(config_path).resolve()
    return _runtime(str(path), path.stat().st_mtime, lock)


def new_decision_id() -> str:
    """A fresh decision id, for a cycle or a request that is not a ledger claim."""
    return uuid.uuid4().hex[:12]


def claim_decision_id(rt: Runtime, index: int, name: str) -> str:
    """The decision id of a claimed batch: the same for every attempt at that claim."""
    return hashlib.sha256(f"{rt.config.model.name}:{index}:{name}".encode()).hexdigest()[:12]


PERFORMANCE_ESTIMATOR = "performance_estimator.json"
# Each feature's permutation-importance share on the version's validation rows (core.importance).
FEATURE_IMPORTANCE = "feature_importance.json"


def note_outside_moves(rt: Runtime, noticed_by: str) -> None:
    """Put alias moves made outside retrainer (the MLflow UI) on record — under the promotion lock,
    so that a promotion half-way between moving an alias and recording it is not mistaken for one.
    When a promotion holds the lock, this waits for the next look."""
    try:
        with rt.lock(rt.config, timeout_seconds=2.0):
            rt.registry.note_outside_moves(noticed_by=noticed_by)
    except LockTimeout:
        pass


def history(rt: Runtime) -> list[BatchRecord]:
    """The model's decision records, as its journal holds them."""
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
