"""Labels that arrive after their batches: fill the accepted batches, re-score their records."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.core import labels
from retrainer.core.metrics import MetricError
from retrainer.data import batches as batch_files
from retrainer.registry.tracking import log_late_metrics
from retrainer.state import journal, stores
from retrainer.steps.runtime import Runtime


def read_labels(rt: Runtime, path: str) -> labels.PreparedLabels:
    """The labels of a labels file by id; raises LabelsError (naming the file) when it cannot be used."""
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
    """What a labels file did: the rows it newly labelled per batch, the labels it did not apply and why,
    and the file the unused ones were kept in (None: there were none)."""

    # Batch name -> rows newly labelled.
    batches: dict[str, int] = field(default_factory=dict)
    already_labelled: int = 0
    unmatched: int = 0
    unusable: int = 0
    duplicate_ids: int = 0
    kept_as: str | None = None

    def summary(self) -> str:
        """The outcome in one line for a person."""
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
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
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
            stores.replace_file_atomically(path, functools.partial(_write_parquet, joined.frame))
            outcome.batches[stores.BatchFiles.name_of(path)] = joined.newly_labelled
        record = recorded.get(index)
        if record is None or record.decision not in ("none", "retrain") or index not in predictions:
            continue
        try:
            metrics, rows = labels.batch_metrics(joined.frame, pd.read_parquet(predictions[index]), schema, rt.metric)
        except MetricError as exc:  # the team's metric function failed: the labels are kept, the metric is not
            logging.getLogger("retrainer").warning("retrainer: warning: %s", exc)
            continue
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


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    frame.to_parquet(target, index=False)
