"""The monitor deployment's intake, one job each: list the landing location, copy a new file in,
claim it in the ledger, close the claim once its cycle is on record. No decisions here: which files
to take on is `core.intake.plan_intake`; the cycle itself is `pipeline.cycle.monitor`."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from retrainer.core.intake import LandedFile, LedgerEntry
from retrainer.core.records import BatchRecord
from retrainer.data import landing
from retrainer.observability import webhooks
from retrainer.state import journal, stores
from retrainer.state.ledger import IntakeError, Ledger, open_ledger
from retrainer.steps.runtime import Runtime, next_index


def ledger(rt: Runtime) -> Ledger:
    """The intake ledger of the config's database."""
    return open_ledger(rt.config.ledger_url)


def ledger_entries(rt: Runtime) -> list[LedgerEntry]:
    """The model's entries in the intake ledger."""
    return ledger(rt).entries(rt.config.model.name)


def scan_landing(rt: Runtime) -> list[LandedFile]:
    """The landed files that match `intake.pattern`; raises IntakeError when `intake.landing` is not set."""
    location = rt.config.intake.landing
    if not location:
        raise IntakeError(f"{rt.config_path}: intake.landing is not set: name the folder or fsspec URI "
                          "where new batch files land")
    return landing.list_landed(location, rt.config.intake.pattern)


@dataclass(frozen=True)
class StagedBatch:
    """A landed file copied into `incoming/`: its batch name, the copy's path and the SHA-256 of its bytes."""

    name: str
    path: str
    content_hash: str


def stage_batch(rt: Runtime, landed_file: LandedFile, name: str) -> StagedBatch | None:
    """Copy a landed file into the model's `incoming/` folder, named by its content hash; None when
    the file vanished from the landing location before it could be copied (it is not a batch then)."""
    folder = rt.config.storage.incoming_dir(rt.config.model.name)
    partial = landing.ensure_inside(folder, folder / f".copy-{uuid.uuid4().hex}")
    try:
        digest = landing.stage(landed_file, partial)
    except landing.LandingError:
        return None
    except (PermissionError, IsADirectoryError) as exc:
        # One unreadable file must not stop the others: it is skipped (and tried again next run).
        partial.unlink(missing_ok=True)
        logging.getLogger("retrainer").warning("retrainer: warning: cannot read %s: %s", landed_file.uri, exc)
        return None
    target = landing.ensure_inside(folder, folder / f"{digest[:16]}__{landed_file.file_name}")
    partial.replace(target)
    return StagedBatch(name, str(target), digest)


def claim_batch(rt: Runtime, landed_file: LandedFile, staged: StagedBatch) -> LedgerEntry:
    """Take the batch on under the next batch index: past the journal, the accepted store and every
    index the ledger handed out (a claim whose cycle never got as far as the journal keeps its own)."""
    index = next_index(rt, journal.read_journal(rt.journal))  # the ledger's indices included
    return ledger(rt).claim(rt.config.model.name, landed_file, staged.name, staged.content_hash, index, staged.path)


def retry_claim(rt: Runtime, entry: LedgerEntry) -> LedgerEntry:
    """Count another attempt at an unfinished claim (a resume after a crash)."""
    return ledger(rt).retry(entry)


def refuse(rt: Runtime, landed_file: LandedFile, reason: str) -> None:
    """Put a file that will never be processed (an unsafe name) on record, so that it is not retried."""
    ledger(rt).refuse(rt.config.model.name, landed_file, reason)


def recorded_cycle(rt: Runtime, entry: LedgerEntry) -> BatchRecord | None:
    """The record of a claimed batch whose cycle reached the journal before its worker died."""
    for record in journal.read_journal(rt.journal):
        if record.batch_index == entry.batch_index and record.content_hash == entry.content_hash:
            return record
    return None


def remember(rt: Runtime, entry: LedgerEntry, landed_file: LandedFile) -> None:
    """Note the new stamp of a known file that was listed again with the same bytes."""
    ledger(rt).remember(entry, landed_file)


def requeue(rt: Runtime, entry: LedgerEntry, landed_file: LandedFile, staged: StagedBatch) -> LedgerEntry:
    """Take a set-aside batch dropped again for one more round of attempts, under its own batch index."""
    return ledger(rt).requeue(entry, landed_file, staged.path)


def finish_claim(rt: Runtime, entry: LedgerEntry, outcome: str) -> None:
    """Mark the batch done, then drop its incoming copy (the accepted store or the quarantine has it)."""
    ledger(rt).finish(entry, outcome)
    if entry.staged_path:
        Path(entry.staged_path).unlink(missing_ok=True)


def give_up(rt: Runtime, entry: LedgerEntry, reason: str) -> None:
    """A batch whose cycle failed `intake.max_attempts` times is set aside (its copy kept in incoming/),
    so that one poisoned file does not stop every batch behind it; the webhook hears of it."""
    ledger(rt).fail(entry, reason)
    if entry.batch_index is not None:
        # What an attempt stored before it died must not feed training windows: into quarantine with it.
        model = rt.config.model.name
        folder = rt.config.storage.quarantine_dir(model)
        for store, kind in ((stores.AcceptedStore(rt.config.storage.accepted_dir(model)), "accepted"),
                            (stores.PredictionStore(rt.config.storage.predictions_dir(model)), "predictions")):
            path = store.paths().get(entry.batch_index)
            if path is not None:
                folder.mkdir(parents=True, exist_ok=True)
                path.replace(folder / f"{path.stem}.set-aside-{kind}.parquet")
    webhooks.send(rt.config.notifications, "intake_failed",
                       webhooks.intake_failed_payload(rt.config.model.name, entry.name, reason))


def drop_staged(staged: StagedBatch) -> None:
    """Drop the incoming copy of a batch that is not taken on (processed already)."""
    Path(staged.path).unlink(missing_ok=True)
