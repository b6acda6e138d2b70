"""The intake ledger: which landed batches were taken on, under which batch index, and whether their
cycle finished. It is what makes the monitor deployment process every batch exactly once.

A batch is keyed by its file name and the SHA-256 of its bytes:
- the same name with the same bytes dropped again is ignored (a re-delivery, an overlapping scan);
- the same name with new bytes is a new batch (a corrected file), processed in its turn;
- the same bytes under a new name reach the cycle, whose validation rejects them as a duplicate
  of the earlier batch (a recorded, alerted rejection: someone delivered the data twice).

A claim is written before the cycle starts and holds the batch index the cycle will use. A claim
left `processing` by a killed worker is picked up by the next monitor run and redone under the
same index, so the accepted store and the journal end with one copy of the batch. Monitor runs of
one model exclude each other (`locks.intake_lock`), so claims are never taken twice.

The ledger lives in a database (SQLAlchemy): a SQLite file in the work dir by default, PostgreSQL
when workers run on several machines."""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC, datetime
from typing import Any

from retrainer.core.intake import LandedFile, LedgerEntry
from retrainer.errors import UserError


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """The ledger table in its database. Every method is one short transaction."""

    TABLE = "retrainer_intake"

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        self._engine = sa.create_engine(_sqlalchemy_url(url), pool_pre_ping=True)
        metadata = sa.MetaData()
        self._table = sa.Table(
            self.TABLE, metadata,
            sa.Column("model", sa.Text, primary_key=True),
            # Text: object-store keys run to 1,024 bytes, and a refused name must still fit on record.
            sa.Column("file_name", sa.Text, primary_key=True),
            sa.Column("content_hash", sa.String(64), primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("batch_index", sa.Integer, nullable=True),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("fingerprint", sa.Text, nullable=True),
            sa.Column("staged_path", sa.Text, nullable=True),
            sa.Column("attempts", sa.Integer, nullable=False, default=0),
            sa.Column("outcome", sa.Text, nullable=True),
            sa.Column("claimed_at", sa.String(32), nullable=False),
            sa.Column("finished_at", sa.String(32), nullable=True),
        )
        # Another process may create the table between the check and the create.
        with contextlib.suppress(sa.exc.IntegrityError):
            metadata.create_all(self._engine, checkfirst=True)

    def close(self) -> None:
        """Close the database engine's pooled connections."""
        self._engine.dispose()

    def entries(self, model: str) -> list[LedgerEntry]:
        """Every entry of the model's ledger."""
        import sqlalchemy as sa

        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(self._table).where(self._table.c.model == model)).mappings().all()
        return [_entry(row) for row in rows]

    def claim(self, model: str, landed: LandedFile, name: str, content_hash: str, batch_index: int,
              staged_path: str) -> LedgerEntry:
        """Take a batch on under `batch_index`; raises `AlreadyClaimed` if its name and bytes are known."""
        import sqlalchemy as sa

        values = {"model": model, "file_name": landed.file_name, "content_hash": content_hash, "name": name,
                  "batch_index": batch_index, "status": "processing", "fingerprint": landed.fingerprint,
                  "staged_path": staged_path, "attempts": 1, "outcome": None, "claimed_at": _now()}
        try:
            with self._engine.begin() as connection:
                connection.execute(sa.insert(self._table).values(**values))
        except sa.exc.IntegrityError:
            raise AlreadyClaimed(f"{landed.file_name} ({content_hash[:12]}) is already in the ledger") from None
        return _entry(values)

    def refuse(self, model: str, landed: LandedFile, reason: str) -> None:
        """Put a file that will never be processed on record once (an unsafe name), so it is not retried."""
        import sqlalchemy as sa

        values = {"model": model, "file_name": landed.file_name, "content_hash": "-", "name": "-",
                  "batch_index": None, "status": "refused", "fingerprint": landed.fingerprint, "staged_path": None,
                  "attempts": 0, "outcome": reason, "claimed_at": _now(), "finished_at": _now()}
        try:
            with self._engine.begin() as connection:
                connection.execute(sa.insert(self._table).values(**values))
        except sa.exc.IntegrityError:
            # Refused before: keep its stamp current, so the next scan knows it without a look.
            self._update(_entry(values), fingerprint=landed.fingerprint)

    def remember(self, entry: LedgerEntry, landed: LandedFile) -> None:
        """The file of a known entry was listed with a new stamp but the same bytes: note the stamp."""
        if landed.fingerprint is not None and landed.fingerprint != entry.fingerprint:
            self._update(entry, fingerprint=landed.fingerprint)

    def requeue(self, entry: LedgerEntry, landed: LandedFile, staged_path: str) -> LedgerEntry:
        """A set-aside batch dropped again: one more round of attempts, under its own batch index."""
        changes = {"status": "processing", "attempts": 1, "outcome": None, "fingerprint": landed.fingerprint,
                   "staged_path": staged_path}
        self._update(entry, finished_at=None, **changes)
        return _replace(entry, **changes)

    def retry(self, entry: LedgerEntry) -> LedgerEntry:
        """Count another attempt at an unfinished claim (a resume after a crash)."""
        self._update(entry, attempts=entry.attempts + 1)
        return _replace(entry, attempts=entry.attempts + 1)

    def finish(self, entry: LedgerEntry, outcome: str) -> None:
        """Close a claim: its cycle is on record, with `outcome` (the decision)."""
        self._update(entry, status="done", outcome=outcome, finished_at=_now())

    def fail(self, entry: LedgerEntry, reason: str) -> None:
        """Set a claim aside, with the reason its attempts failed; the same bytes dropped again requeue it."""
        self._update(entry, status="failed", outcome=reason, finished_at=_now())

    def _update(self, entry: LedgerEntry, **values: Any) -> None:
        import sqlalchemy as sa

        table = self._table
        with self._engine.begin() as connection:
            connection.execute(sa.update(table).where(
                table.c.model == entry.model, table.c.file_name == entry.file_name,
                table.c.content_hash == entry.content_hash).values(**values))


@functools.lru_cache(maxsize=8)
def open_ledger(url: str) -> Ledger:
    """The ledger of a database URL, opened once per process (its engine pools the connections)."""
    return Ledger(url)


class IntakeError(UserError):
    """The intake cannot run as configured; the message is the one-line reason."""


class AlreadyClaimed(Exception):
    """The batch (same name, same bytes) is in the ledger already."""


def _sqlalchemy_url(url: str) -> str:
    # psycopg 3 is the driver this project installs for PostgreSQL (SQLAlchemy's default is psycopg2).
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(model=row["model"], name=row["name"], content_hash=row["content_hash"],
                       batch_index=row["batch_index"], status=row["status"], file_name=row["file_name"],
                       fingerprint=row["fingerprint"], staged_path=row["staged_path"],
                       attempts=row["attempts"], outcome=row["outcome"])


def _replace(entry: LedgerEntry, **changes: Any) -> LedgerEntry:
    from dataclasses import replace

    return replace(entry, **changes)
