"""Batches on disk: reading one (with a one-line reason when it cannot be read), the store
of accepted batches that training windows come from, the quarantine, and the journal of
cycles that is the policy's memory."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import ModelSettings, RetrainerConfig
from retrainer.records import BatchRecord

BATCH_SUFFIXES = (".csv", ".parquet", ".pq")


class BatchReadError(Exception):
    """A batch file that cannot be used as data; the message is the one-line reason."""


def list_batch_files(folder: Path) -> list[Path]:
    """Batch files of a folder in file-name order (CSV or parquet; other files are not batches)."""
    if not folder.is_dir():
        raise BatchReadError(f"{folder}: not a folder of batch files")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in BATCH_SUFFIXES)


def batch_name(path: Path) -> str:
    """The file name without its suffix; control and format characters (a newline in a file name)
    become '_', since the name goes into file names, reports, logs and MLflow artifact paths."""
    return "".join("_" if unicodedata.category(c).startswith("C") else c for c in path.stem)


def read_batch(path: Path) -> pd.DataFrame:
    """Read a CSV or parquet batch; raises BatchReadError with the reason it is unusable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BatchReadError(f"cannot open file ({exc.strerror})") from None
    if size == 0:
        raise BatchReadError("empty file (0 bytes)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, encoding="utf-8", low_memory=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise BatchReadError(f"unsupported file type '{suffix}' (use .csv or .parquet)")
    except UnicodeDecodeError:
        raise BatchReadError(_encoding_reason(path)) from None
    except pd.errors.EmptyDataError:
        raise BatchReadError("no columns: the file has no header line") from None
    except pd.errors.ParserError as exc:
        raise BatchReadError(f"malformed CSV: {str(exc).splitlines()[0]}") from None
    except BatchReadError:
        raise
    except Exception as exc:  # pyarrow raises many types for a broken or truncated parquet file
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BatchReadError(f"unreadable {suffix.lstrip('.')} file: {first_line}") from None
    if frame.empty:
        raise BatchReadError("no rows: the file holds a header only" if len(frame.columns) else "no rows and no columns")
    if suffix == ".csv" and len(frame.columns) == 1:
        header = str(frame.columns[0])
        first_value = str(frame.iloc[0, 0])
        # A wrong delimiter splits the header and the rows alike; a header with a '|' in its
        # name over plain values is a legitimate one-column file.
        separator = next((s for s in (";", "\t", "|") if s in header and s in first_value), None)
        if separator is not None:
            shown = "\\t" if separator == "\t" else separator
            raise BatchReadError(
                f"wrong delimiter: the header has '{shown}' but the file reads as one column "
                "(write comma-separated CSV)"
            )
    # Row labels must be unique: row-level quarantine splits rows by them (a parquet file may
    # carry any stored index).
    return frame.reset_index(drop=True)


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the same batch delivered twice has the same hash."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _encoding_reason(path: Path) -> str:
    # pandas decodes in chunks, so its error offset is within a chunk; find the file offset.
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
    return "not UTF-8 text; save the file as UTF-8"


class BatchFiles:
    """One parquet file per batch, ``{index:06d}__{name}.parquet``, so that file-name order is batch order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, index: int, name: str, frame: pd.DataFrame) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{index:06d}__{name}.parquet"
        frame.to_parquet(path, index=False)
        return path

    def paths(self) -> dict[int, Path]:
        return {int(p.name.split("__", 1)[0]): p for p in sorted(self.folder.glob("*.parquet"))}

    def indices(self) -> list[int]:
        return sorted(self.paths())


class AcceptedStore(BatchFiles):
    """Accepted batches (features and labels): training windows come from here."""

    def load(self, first_index: int, last_index: int) -> pd.DataFrame:
        """Accepted batches with index in [first_index, last_index], concatenated in order."""
        frames = [pd.read_parquet(path) for index, path in self.paths().items() if first_index <= index <= last_index]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class PredictionStore(BatchFiles):
    """The champion's predictions on each accepted batch, by row id: what late labels are scored against
    (columns: ``id``, ``prediction``, and for classifiers ``probability__<class>``)."""


def replace_file_atomically(path: Path, write: Any) -> None:
    """Write a file beside `path` and move it over it: a reader sees the old or the new, never half."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    temporary.replace(path)


def _free_stem(folder: Path, name: str) -> str:
    """`name`, or `name.2`, `name.3`… when a batch of that name is already in quarantine:
    a second rejection under the same name must not overwrite the first."""
    stem, number = name, 1
    while (folder / f"{stem}.validation.json").exists():
        number += 1
        stem = f"{name}.{number}"
    return stem


def _write_evidence(folder: Path, stem: str, result: dict[str, Any], summary: str) -> None:
    (folder / f"{stem}.validation.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (folder / f"{stem}.summary.txt").write_text(summary + "\n", encoding="utf-8")


def quarantine_batch(source: Path, name: str, folder: Path, result: dict[str, Any], summary: str) -> Path:
    """Copy a rejected batch, untouched, beside its validation result and a short summary."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, name)
    target = folder / f"{stem}{source.suffix}"
    if source.is_file() and source.resolve() != target.resolve():
        shutil.copy2(source, target)
    _write_evidence(folder, stem, result, summary)
    return target


def quarantine_rows(rows: pd.DataFrame, name: str, folder: Path, result: dict[str, Any], summary: str) -> Path:
    """Rows split off an accepted batch, kept with the validation result that split them."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, name)
    target = folder / f"{stem}.rejected_rows.parquet"
    rows.to_parquet(target)
    _write_evidence(folder, stem, result, summary)
    return target


def remove_landed(source: Path, quarantined: Path) -> None:
    """Take a rejected batch out of its landing place, once its quarantine copy is in place. Only a
    regular file is removed: never through a symbolic link, whose target is not the pipeline's."""
    if source.is_symlink():
        return
    if quarantined.is_file() and source.is_file() and source.resolve() != quarantined.resolve():
        source.unlink()


@contextmanager
def journal_lock(journal: Path) -> Iterator[None]:
    """Exclusive use of the journal by one process of this machine: a cycle appending its line and
    late labels rewriting earlier lines must not interleave."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal.with_name(journal.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
                records[position] = record.model_copy(update=updates[record.batch_index])
                changed.append(records[position])
        rewrite_journal(records, journal)
    return changed


def rewrite_journal(records: list[BatchRecord], journal: Path) -> None:
    """Replace the journal (late labels update earlier records), atomically."""
    text = "".join(record.model_dump_json() + "\n" for record in records)
    replace_file_atomically(journal, lambda path: path.write_text(text, encoding="utf-8"))


def read_journal(journal: Path) -> list[BatchRecord]:
    if not journal.exists():
        return []
    lines = journal.read_text(encoding="utf-8").splitlines()
    return [BatchRecord.model_validate_json(line) for line in lines if line.strip()]


MODEL_SETTINGS_FILE = "model_settings.json"


def save_model_settings(config: RetrainerConfig, model: ModelSettings) -> Path:
    """What `retrainer init` inferred about the columns, for configs that leave them out."""
    path = config.storage.model_dir(model.name) / MODEL_SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model.model_dump_json(indent=2), encoding="utf-8")
    return path


def with_saved_columns(config: RetrainerConfig) -> RetrainerConfig:
    """Fill inferred column settings from what `retrainer init` saved, when the file leaves them out."""
    model = config.model
    saved = config.storage.model_dir(model.name) / MODEL_SETTINGS_FILE
    if not saved.exists():
        return config
    inferred = ModelSettings.model_validate_json(saved.read_text(encoding="utf-8"))
    # Only what the file leaves out is taken from init's inference; the file still rules.
    missing = {k: getattr(inferred, k) for k in ("task", "features", "categorical", "id_column", "time_column")
               if getattr(model, k) is None}
    return config.model_copy(update={"model": model.model_copy(update=missing)})
