"""The journal of cycles: one JSON record per batch, the policy's memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrainer.core.records import BatchRecord
from retrainer.state.locks import machine_lock
from retrainer.state.stores import replace_file_atomically


@contextmanager
def journal_lock(journal: Path) -> Iterator[None]:
    """Exclusive use of the journal by one process of this machine: a cycle appending its line and
    late labels rewriting earlier lines must not interleave."""
    with machine_lock(journal.with_name(journal.name + ".lock")):
        yield


def append_record(record: BatchRecord, journal: Path) -> None:
    """The model's journal of cycles: one JSON line per batch, the policy's memory."""
    with journal_lock(journal), journal.open("a", encoding="utf-8") as out:
        out.write(record.model_dump_json() + "\n")


def update_records(journal: Path, updates: dict[int, dict[str, Any]]) -> list[BatchRecord]:
    """Change fields of earlier records (by batch index), re-reading the journal under its lock so
    that a line appended meanwhile is kept. Returns the updated records."""
    if not updates:
        return []
    with journal_lock(journal):
        records = read_journal(journal)
        changed = []
        for position, record in enumerate(records):
            if record.batch_index in updates:
                # Validated like a new record (model_copy would keep a dict where the record types a gate).
                records[position] = BatchRecord.model_validate({**dict(record), **updates[record.batch_index]})
                changed.append(records[position])
        rewrite_journal(records, journal)
    return changed


def rewrite_journal(records: list[BatchRecord], journal: Path) -> None:
    """Replace the journal (late labels update earlier records), atomically."""
    text = "".join(record.model_dump_json() + "\n" for record in records)
    replace_file_atomically(journal, lambda path: path.write_text(text, encoding="utf-8"))


def read_journal(journal: Path) -> list[BatchRecord]:
    """Every record of the journal, in order; no journal yet is no history."""
    if not journal.exists():
        return []
    lines = journal.read_text(encoding="utf-8").splitlines()
    return [BatchRecord.model_validate_json(line) for line in lines if line.strip()]
