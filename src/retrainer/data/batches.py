"""Reading a batch file, with a one-line reason when it cannot be read; batch names and hashes."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow

from retrainer.errors import UserError

BATCH_SUFFIXES = (".csv", ".parquet", ".pq")


class BatchReadError(UserError):
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
            # Arrow's allocator keeps the file's decoded table after pandas has its own copy of the text
            # columns: handing that back is ~0.4 GB of a 1M-row × 50-feature batch's peak.
            pyarrow.default_memory_pool().release_unused()
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
