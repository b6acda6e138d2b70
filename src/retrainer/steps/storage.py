"""Where a batch goes: the quarantine (whole or rows), the accepted store, saved predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrainer.core import labels
from retrainer.data import batches as batch_files
from retrainer.data import quarantine as quarantine_files
from retrainer.state import stores
from retrainer.steps.runtime import Runtime
from retrainer.steps.scoring import BatchRead, Scoring
from retrainer.validation import ValidationOutcome


# -- where the batch goes -------------------------------------------------------------------------
def quarantine(rt: Runtime, path: str, name: str, outcome: ValidationOutcome) -> str:
    """Copy a rejected batch into the model's quarantine, beside its validation result and summary;
    returns the copy's path."""
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    return str(quarantine_files.quarantine_batch(Path(path), name, folder, outcome.result, outcome.summary(name)))


def remove_landed(path: str, quarantined: str) -> None:
    """Remove a rejected batch from where it landed once its quarantine copy is in place (never a link)."""
    quarantine_files.remove_landed(Path(path), Path(quarantined))


def split_off_rows(rt: Runtime, batch: BatchRead, name: str, outcome: ValidationOutcome) -> BatchRead:
    """Row-level quarantine: failing rows go to quarantine, the batch goes on with the rest only."""
    assert batch.frame is not None
    assert outcome.rejected_rows is not None
    folder = rt.config.storage.quarantine_dir(rt.config.model.name)
    quarantine_files.quarantine_rows(outcome.rejected_rows, name, folder, outcome.result, outcome.summary(name))
    rejected = outcome.rejected_rows.index
    return BatchRead(batch.frame.drop(index=rejected), content_hash=batch.content_hash,
                     typed_frame=batch.typed(rt.schema).drop(index=rejected))


def accept(rt: Runtime, index: int, name: str, batch: BatchRead) -> None:
    """Store an accepted batch typed as the champion's schema says (`BatchRead.typed`), so that every
    training window's batches concatenate whatever types each file arrived with."""
    assert batch.frame is not None
    stores.AcceptedStore(rt.config.storage.accepted_dir(rt.config.model.name)).add(index, name,
                                                                                 batch.typed(rt.schema))


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


def combine(reads: list[BatchRead]) -> pd.DataFrame:
    """The frames of several batches as one; raises BatchReadError with the first unreadable one's error."""
    frames = [read.frame for read in reads if read.frame is not None]
    if len(frames) < len(reads):
        raise batch_files.BatchReadError(next(f"{read.error}" for read in reads if read.frame is None))
    return pd.concat(frames, ignore_index=True)
