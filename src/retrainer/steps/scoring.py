"""Reading a batch and scoring it with the champion: its predictions before the labels are used,
then its metrics on the labelled rows kept and its estimated metric."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainer.core.metrics import MetricError, Outputs, all_metrics, metric_std_error
from retrainer.core.records import ScoringSummary
from retrainer.core.schema import (
    BatchSchema,
    feature_chunks,
    has_labels,
    target_values,
    typed_view,
)
from retrainer.data import batches as batch_files
from retrainer.monitoring import (
    Estimate,
    PerformanceEstimator,
    estimate_accuracy,
)
from retrainer.registry import (
    ModelVersionInfo,
    RegistryError,
    UntrustedModel,
)
from retrainer.steps.runtime import PERFORMANCE_ESTIMATOR, Runtime, note_outside_moves


# -- reading and scoring ---------------------------------------------------------------------
@dataclass
class BatchRead:
    """A batch file as read: its frame (None when unreadable: `error` says why) and its bytes' SHA-256."""

    frame: pd.DataFrame | None
    error: str | None = None
    content_hash: str | None = None
    # `typed()`'s view, once made (row-level quarantine hands on the rows kept of both).
    typed_frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        """The batch's row count (0 when it could not be read)."""
        return 0 if self.frame is None else len(self.frame)

    def typed(self, schema: BatchSchema) -> pd.DataFrame:
        """The frame as the schema types it (`schema.typed_view`), converted once per batch: validation,
        scoring, drift, out-of-distribution and the accepted copy all start from this one view (at 1M rows
        × 50 features each conversion took 0.7-2.5 s and a copy of the batch)."""
        assert self.frame is not None, "an unreadable batch has no typed view"
        if self.typed_frame is None:
            self.typed_frame = typed_view(self.frame, schema)
        return self.typed_frame


def read_batch(path: str) -> BatchRead:
    """Read a batch file and hash its bytes; a file that cannot be opened or read is returned as its error,
    not raised (the cycle records it as an unreadable batch)."""
    try:
        digest = batch_files.content_hash(Path(path))
    except OSError as exc:
        return BatchRead(None, f"cannot open file ({exc.strerror})")
    try:
        return BatchRead(batch_files.read_batch(Path(path)), content_hash=digest)
    except batch_files.BatchReadError as exc:
        return BatchRead(None, str(exc), digest)


def find_champion(rt: Runtime) -> ModelVersionInfo:
    """The model's @champion, once alias moves made outside retrainer are on record; raises RegistryError
    when there is none (the model was never initialised)."""
    note_outside_moves(rt, "a monitoring cycle")
    champion = rt.registry.champion()
    if champion is None:
        raise RegistryError(
            f"model '{rt.registry.name}' has no @{rt.config.mlflow.aliases.champion}: run `retrainer init` first"
        )
    return champion


def check_champion(rt: Runtime, champion: ModelVersionInfo) -> str | None:
    """Load the champion the safe way (`registry.trust`); the reason when it is refused (None: it
    serves). A refusal is the cycle's outcome, not its failure: the batch is still validated and kept."""
    try:
        rt.registry.load_model(champion)
    except UntrustedModel as exc:
        logging.getLogger("retrainer").error("retrainer: error: %s", exc)
        return str(exc)
    return None


@dataclass
class Scoring:
    """What the champion made of a batch: its predictions, then its metrics on the labelled rows and its
    estimated metric. Empty when the batch could not be scored; `failure` says why when the champion
    failed on it."""

    # The champion's predictions, indexed like the batch's rows.
    predictions: pd.Series | None = None
    # Classifiers: the class probabilities (columns in `classes` order), indexed like the rows.
    probabilities: pd.DataFrame | None = None
    classes: list[Any] | None = None
    metric: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    metric_std_error: float | None = None
    estimate: Estimate | None = None
    # Why the champion could not predict this batch (it loaded, then failed): recorded as a refusal.
    failure: str | None = None

    def summary_fields(self) -> ScoringSummary:
        """What the cycle's record keeps of it."""
        return ScoringSummary(self.metric, self.metrics, self.labelled_rows,
                              self.estimate.value if self.estimate else None,
                              self.estimate.std if self.estimate else None, self.metric_std_error)


def score_batch(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> Scoring:
    """The champion's predictions, made before the batch's labels are used for anything."""
    schema = rt.schema
    if batch.frame is None or any(c not in batch.frame.columns for c in schema.features):
        return Scoring()
    model = rt.registry.load_model(champion)
    probabilistic = schema.task == "classification" and hasattr(model, "predict_proba")
    predicted, probabilities = [], []
    try:
        for inputs in feature_chunks(batch.typed(schema), schema):
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


def measure_performance(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> Scoring:
    """The champion's metrics on the batch's labelled rows (those kept, after row-level quarantine),
    and its estimated metric from calibrated confidence, which needs no labels."""
    schema = rt.schema
    if batch.frame is None or scoring.predictions is None:
        return scoring
    rows = batch.frame.index
    predictions = scoring.predictions.loc[rows]
    probabilities = None if scoring.probabilities is None else scoring.probabilities.loc[rows]
    # The calibrated estimate is of accuracy: it stands in for no other metric.
    kept = Scoring(predictions, probabilities, scoring.classes,
                   estimate=_estimate(rt, champion, probabilities)
                   if probabilities is not None and rt.metric.name == "accuracy" else None)
    if not has_labels(batch.frame, schema):
        return kept
    targets = target_values(batch.typed(schema), schema)
    labelled = targets.notna()  # a label that is not a number (regression) counts as missing
    if not labelled.any():
        return kept
    labelled_probabilities = None if probabilities is None else probabilities[labelled].to_numpy()
    kept.labelled_rows = int(labelled.sum())
    try:
        kept.metrics = all_metrics(schema.task, targets[labelled], predictions[labelled], labelled_probabilities,
                                   scoring.classes, primary=rt.metric)
    except MetricError as exc:  # the team's metric function failed: the batch still counts, without a metric
        logging.getLogger("retrainer").warning("retrainer: warning: %s", exc)
        return kept
    kept.metric = kept.metrics.get(rt.metric.name)
    if kept.metric is not None:
        outputs = Outputs(predictions[labelled].to_numpy(dtype=object if schema.task == "classification" else float),
                          labelled_probabilities, None if scoring.classes is None else tuple(scoring.classes))
        kept.metric_std_error = metric_std_error(schema.task, targets[labelled], outputs, rt.metric)
    return kept
