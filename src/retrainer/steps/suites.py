"""`retrainer suite draft|check|docs`: the expectation suite as data engineers work on it.

None of these start Prefect or touch MLflow: they read the config, the model's journal and the
batches it kept (accepted store and quarantine), and run Great Expectations directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from retrainer.config import RetrainerConfig
from retrainer.core.records import BatchRecord, awaiting_requeue
from retrainer.core.schema import BatchSchema, resolve_model_settings, schema_from_settings, typed_view
from retrainer.data.batches import BATCH_SUFFIXES, BatchReadError, read_batch
from retrainer.errors import UserError
from retrainer.state import journal, stores
from retrainer.validation import SuiteError, draft_suite, load_suite, save_suite, validate_batch
from retrainer.validation.docs import build_data_docs


class SuiteCommandError(UserError):
    """A suite command cannot run; the message says why and what to do."""


def draft(config: RetrainerConfig, data_paths: list[Path], out: Path | None, force: bool) -> Path:
    """Profile reference data into a draft suite; never overwrites a suite someone edited unless forced."""
    target = out or config.suite_path
    if target.exists() and not force:
        raise SuiteCommandError(f"{target} exists (it may hold edits); use --force to replace it or --out elsewhere")
    frames = []
    for path in data_paths:
        try:
            frames.append(read_batch(path))
        except BatchReadError as exc:
            raise SuiteCommandError(f"{path}: {exc}") from None
    reference = pd.concat(frames, ignore_index=True)
    model = resolve_model_settings(reference, config.model)
    schema = schema_from_settings(model)
    save_suite(draft_suite(reference, schema, config.model.name, config.validation, len(data_paths)), target)
    return target


@dataclass
class KeptBatch:
    record: BatchRecord
    path: Path | None


def _kept_file(config: RetrainerConfig, record: BatchRecord) -> Path | None:
    """Where the pipeline kept the batch: the accepted store, or the quarantine (rejections)."""
    name = config.model.name
    if record.quarantined_as:
        return Path(record.quarantined_as) if Path(record.quarantined_as).exists() else None
    if record.decision == "reject_batch":
        folder = config.storage.quarantine_dir(name)
        candidates = [p for p in folder.glob(f"{record.batch}.*")
                      if p.suffix.lower() in BATCH_SUFFIXES and p.stem == record.batch]
        return candidates[0] if candidates else None
    path = config.storage.accepted_dir(name) / f"{record.batch_index:06d}__{record.batch}.parquet"
    return path if path.exists() else None


def requeue_plan(config: RetrainerConfig, names: list[str] | None = None) -> list[KeptBatch]:
    """The quarantined batches to run again (`retrainer requeue`), oldest first: every rejection no later
    cycle has re-run, or those of `names`; raises SuiteCommandError for a name that is not one of them."""
    waiting = awaiting_requeue(journal.read_journal(config.storage.timeline_path(config.model.name)))
    if names:
        unknown = sorted(set(names) - {r.batch for r in waiting})
        if unknown:
            raise SuiteCommandError(f"not a quarantined batch waiting to be run again: {', '.join(unknown)} "
                                    f"(waiting: {', '.join(r.batch for r in waiting) or 'none'})")
        waiting = [r for r in waiting if r.batch in names]
    return [KeptBatch(r, _kept_file(config, r)) for r in waiting]


def recent_batches(config: RetrainerConfig, last: int) -> list[KeptBatch]:
    """The last `last` batches of the model's journal, each with the file the pipeline kept of it (None:
    no longer kept); raises SuiteCommandError when there are none."""
    records = journal.read_journal(config.storage.timeline_path(config.model.name))
    if not records:
        raise SuiteCommandError(f"model '{config.model.name}' has no processed batches yet (nothing to check against)")
    return [KeptBatch(r, _kept_file(config, r)) for r in records[-last:]]


@dataclass
class CheckRow:
    """One batch of `suite check`: its recorded outcome, its outcome under the suite now, and the reasons."""

    batch: str
    recorded: str
    now: str
    detail: str

    @property
    def changed(self) -> bool:
        """Whether the suite as it is now would change the batch's outcome."""
        return self.recorded != self.now


def _schema(config: RetrainerConfig) -> BatchSchema:
    return schema_from_settings(stores.with_saved_columns(config).model)


def check(config: RetrainerConfig, last: int) -> list[CheckRow]:
    """Dry-run the suite as it is on disk against the last batches; nothing is recorded or moved."""
    schema = _schema(config)
    load_suite(config.suite_path)  # a broken suite file is reported once, before any batch
    rows: list[CheckRow] = []
    for kept in recent_batches(config, last):
        record = kept.record
        recorded = "rejected" if record.decision == "reject_batch" else "accepted"
        if kept.path is None:
            rows.append(CheckRow(record.batch, recorded, recorded, "batch file no longer kept: not re-checked"))
            continue
        if any(f.startswith(("unreadable:", "duplicate:")) for f in record.validation_failures):
            rows.append(CheckRow(record.batch, recorded, recorded, record.validation_failures[0] + " (not the suite's call)"))
            continue
        try:
            frame = read_batch(kept.path)
        except BatchReadError as exc:
            rows.append(CheckRow(record.batch, recorded, "rejected", f"unreadable: {exc}"))
            continue
        outcome = validate_batch(frame, schema, config.suite_path, config.validation)
        now = "accepted" if outcome.valid else "rejected"
        detail = "; ".join(f"critical: {f}" for f in outcome.failures) or "; ".join(
            f"warning: {w}" for w in outcome.warnings)
        rows.append(CheckRow(record.batch, recorded, now, detail))
    return rows


def docs(config: RetrainerConfig, last: int, out: Path | None) -> Path:
    """GE Data Docs of the suite and its results on the last batches, as a static folder."""
    schema = _schema(config)
    suite = load_suite(config.suite_path)
    batches = []
    for kept in recent_batches(config, last):
        if kept.path is None:
            continue
        try:
            frame = read_batch(kept.path)
        except BatchReadError:
            continue  # unreadable files have no data to document
        if all(c in frame.columns for c in schema.required_columns):
            batches.append((kept.record.batch, typed_view(frame, schema)))  # as the pipeline checks it
    folder = out or config.storage.model_dir(config.model.name) / "data_docs"
    return build_data_docs(suite, batches, folder)


__all__ = ["CheckRow", "SuiteCommandError", "SuiteError", "check", "docs", "draft", "recent_batches"]
