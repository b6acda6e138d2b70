"""The landing location: a folder or an fsspec URI where upstream jobs drop batch files.

Listing and copying only. A landed file is copied ("staged") into the work dir before a cycle
reads it, hashing the bytes on the way: the cycle then works on a file nobody else rewrites,
and the ledger keys the batch by exactly the bytes that were processed.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any

from retrainer.core.intake import LandedFile
from retrainer.data.batches import BATCH_SUFFIXES
from retrainer.errors import UserError


class LandingError(UserError):
    """The landing location cannot be listed or read; the message is the one-line reason."""


class UnsafeBatchName(UserError, ValueError):
    """A file name that could escape the project's folders, or is not a plain file name."""


# Plain file names only: no separators, no parent references, no hidden files, no control or format
# characters, no '::' (fsspec's separator of chained stores).


def _control(text: str) -> bool:
    return any(unicodedata.category(character).startswith("C") for character in text)

MAX_NAME_LENGTH = 200


def safe_batch_name(file_name: str) -> str:
    """The batch name (file name without suffix) of a landed file, refused when it could be used to
    reach outside the project's folders (`../x.csv`, `a/b.csv`, `..\\\\x.csv`, hidden or control-character
    names). Batch names become file names under the work dir, so only plain names pass."""
    if not file_name or len(file_name) > MAX_NAME_LENGTH:
        raise UnsafeBatchName(f"refused batch file name {file_name!r}: empty or longer than {MAX_NAME_LENGTH}")
    if "/" in file_name or "\\" in file_name or "::" in file_name or _control(file_name):
        raise UnsafeBatchName(f"refused batch file name {file_name!r}: path separators or control characters")
    stem = PurePosixPath(file_name).stem
    if file_name.startswith(".") or not stem or stem in (".", ".."):
        raise UnsafeBatchName(f"refused batch file name {file_name!r}: hidden or relative name")
    return stem


def checked_local_batch(path: Path) -> str:
    """The batch name of a local batch file that retrainer may read, move and delete: a regular file,
    not a symbolic link (a link's target lies outside the folder retrainer owns, and moving or
    deleting "the batch" would take that target away), with a plain file name."""
    name = safe_batch_name(path.name)
    if path.is_symlink():
        raise UnsafeBatchName(f"refused batch {path.name!r}: a symbolic link (to {os.readlink(path)!r}); "
                              "put the file itself in the landing folder")
    if path.exists() and not path.is_file():
        raise UnsafeBatchName(f"refused batch {path.name!r}: not a regular file")
    return name


def checked_landed_name(landed: LandedFile) -> str:
    """The batch name of a listed landed file, refused (by name, before a byte is read) when the name
    could escape the project's folders or the file is a link out of the landing location."""
    name = safe_batch_name(landed.file_name)
    if landed.link:
        raise UnsafeBatchName(f"refused batch {landed.file_name!r}: a symbolic link; retrainer reads only files "
                              "that are themselves in the landing location")
    return name


def ensure_inside(folder: Path, path: Path) -> Path:
    """`path`, if it resolves inside `folder`; a second guard wherever a name becomes a path."""
    resolved, root = path.resolve(), folder.resolve()
    if resolved != root and root not in resolved.parents:
        raise UnsafeBatchName(f"refused path {path}: outside {folder}")
    return path


def _filesystem(location: str) -> tuple[Any, str]:
    import fsspec
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(location)
    except (ImportError, ValueError) as exc:
        # e.g. s3:// without s3fs installed: fsspec says which package is missing.
        raise LandingError(f"landing location {location}: {str(exc).splitlines()[0]}") from None
    assert isinstance(fs, fsspec.AbstractFileSystem)
    return fs, root


def _stamp(info: dict[str, Any]) -> str | None:
    for key in ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag"):
        if info.get(key) is not None:
            return str(info[key])
    return None


def _epoch(info: dict[str, Any]) -> float | None:
    from datetime import datetime

    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def list_landed(location: str, pattern: str = "*") -> list[LandedFile]:
    """Batch files directly in the landing location matching `pattern`, in file-name order."""
    fs, root = _filesystem(location)
    try:
        if fs.isfile(root):
            raise LandingError(f"landing location {location}: a file, not a folder")
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        raise LandingError(f"landing location {location}: not found") from None
    except (OSError, PermissionError) as exc:
        raise LandingError(f"landing location {location}: cannot list ({exc})") from None
    files = []
    for info in entries:
        # A link is listed (whatever it points at) so that it is refused by name, never silently skipped.
        if info.get("type") != "file" and not info.get("islink"):
            continue
        file_name = PurePosixPath(str(info["name"]).rstrip("/")).name
        if not fnmatch.fnmatch(file_name, pattern) or PurePosixPath(file_name).suffix.lower() not in BATCH_SUFFIXES:
            continue
        files.append(LandedFile(location, file_name, info.get("size"), _stamp(info), _epoch(info),
                                link=bool(info.get("islink"))))
    return sorted(files, key=lambda f: f.file_name)


def _open_unlinked(fs: Any, path: str) -> Any:
    """Open a landed file for reading; on a local folder without following a symbolic link, so that a
    file swapped for a link after it was listed is not read through it either."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        try:
            return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LandingError(f"{path}: became a symbolic link after it was listed; not read") from None
            raise
    return fs.open(path, "rb")


def stage(landed: LandedFile, target: Path) -> str:
    """Copy a landed file to `target` (written beside it, then renamed: never half a file) and return
    the SHA-256 of the bytes copied, the same digest `data.content_hash` gives for the copy."""
    fs, root = _filesystem(landed.location)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        # Opened by path through the store that listed it: a file name is never parsed as a URL.
        with _open_unlinked(fs, f"{root.rstrip('/')}/{landed.file_name}") as source, partial.open("wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    except FileNotFoundError:
        partial.unlink(missing_ok=True)
        raise LandingError(f"{landed.uri}: gone from the landing location before it was copied") from None
    partial.replace(target)
    return digest.hexdigest()
