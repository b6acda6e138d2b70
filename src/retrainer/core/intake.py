"""Intake planning, pure: which landed files a monitor run takes on, in which order, and which it
leaves (known already, or still being written). The ledger that remembers them is `state.ledger`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing location, as listed (nothing read yet)."""

    # The landing location it was listed in, and its name there: it is opened through the same store.
    location: str
    file_name: str
    size: int | None
    # The store's modification stamp as text (its format differs between stores; only compared).
    modified: str | None
    # The same stamp in epoch seconds, when the store gives a time (for the settle time).
    modified_at: float | None = None
    # A symbolic link (local folders): never read, refused by name.
    link: bool = False

    @property
    def fingerprint(self) -> str | None:
        """Name, size and stamp: the same value means the same file as last time, unread."""
        if self.size is None or self.modified is None:
            return None
        return f"{self.file_name}|{self.size}|{self.modified}"

    @property
    def uri(self) -> str:
        """Where the file is read from: its name under the landing location."""
        return f"{self.location.rstrip('/')}/{self.file_name}"



Status = Literal["processing", "done", "refused", "failed"]


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the intake ledger: a landed file, by name and bytes, and how far its batch got (`status`).

    `name` is the batch name the cycle uses, `staged_path` the file's copy in `incoming/`; `batch_index`
    is None for a refused file, `outcome` the decision once done, or the reason it was refused or failed."""

    model: str
    name: str
    content_hash: str
    batch_index: int | None
    status: Status
    file_name: str
    fingerprint: str | None
    staged_path: str | None
    attempts: int
    outcome: str | None


@dataclass
class IntakePlan:
    """What a monitor run does, in order: redo unfinished claims, then take on new files."""

    resume: list[LedgerEntry]
    candidates: list[LandedFile]
    # Files known by name, size and stamp: already processed (or refused), not even read.
    known: list[LandedFile]
    # Files changed less than `settle_seconds` ago: maybe still being written; next run.
    unsettled: list[LandedFile]


def plan_intake(landed: list[LandedFile], entries: list[LedgerEntry], now: float | None = None,
                settle_seconds: float = 0.0) -> IntakePlan:
    """Pure: unfinished claims first (by batch index), then settled landed files not seen before, in name
    order. How many a run takes on is counted by the run, on the claims it makes.

    A candidate may still turn out to be processed already once its bytes are hashed (a file whose
    stamp changed while its content did not); `is_processed` settles that.
    """
    resume = sorted((e for e in entries if e.status == "processing"), key=lambda e: e.batch_index or 0)
    seen = {e.fingerprint for e in entries if e.fingerprint is not None}
    known = [f for f in landed if f.fingerprint is not None and f.fingerprint in seen]
    fresh = [f for f in landed if f not in known]
    unsettled = [f for f in fresh if now is not None and f.modified_at is not None
                 and now - f.modified_at < settle_seconds]
    return IntakePlan(resume, [f for f in fresh if f not in unsettled], known, unsettled)


def is_processed(entries: list[LedgerEntry], file_name: str, content_hash: str) -> LedgerEntry | None:
    """The ledger entry of this name with these bytes, if there is one (then the file is skipped)."""
    return next((e for e in entries if e.file_name == file_name and e.content_hash == content_hash), None)
