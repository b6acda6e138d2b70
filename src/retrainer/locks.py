"""One promotion at a time per model: a lock around every move of ``@champion``.

Which lock depends on where the registry lives, so that every process that can reach the
registry also reaches the lock:
- a PostgreSQL store (``postgresql://…``, or ``promotion.lock_url`` for an MLflow server on
  PostgreSQL): a session-level advisory lock in that database — released by the server when a
  killed process's connection drops, so a crash never leaves it held;
- anything else (SQLite, a local file store): an exclusive ``flock`` on a file in the work dir,
  also released by the kernel when the holder dies.
The lock is the first guard; the compare-and-set in ``ModelRegistry.promote`` (``@champion`` still
where it was at decision time) is the second.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrainer.config import RetrainerConfig


class LockTimeout(Exception):
    """Another promotion of the same model held the lock for longer than the timeout."""


def lock_key(model: str) -> int:
    """A stable signed 64-bit advisory-lock key for a model name."""
    digest = hashlib.sha256(f"retrainer:promote:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_url(config: RetrainerConfig) -> str | None:
    url = config.promotion.lock_url or config.tracking_uri
    if not url.startswith(("postgresql", "postgres")):
        return None
    # SQLAlchemy's driver suffix (postgresql+psycopg://) is not part of a libpq URI.
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if "+" in scheme or scheme == "postgres" else url


@contextmanager
def promotion_lock(config: RetrainerConfig, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the model's promotion lock; raises LockTimeout after `timeout_seconds`."""
    timeout = config.promotion.lock_timeout_seconds if timeout_seconds is None else timeout_seconds
    url = _postgres_url(config)
    if url is not None:
        with _advisory_lock(url, lock_key(config.registered_model), timeout):
            yield
    else:
        path = config.storage.model_dir(config.model.name) / "promotion.lock"
        with _file_lock(path, timeout):
            yield


@contextmanager
def _advisory_lock(url: str, key: int, timeout: float) -> Iterator[None]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        deadline = time.monotonic() + timeout
        while True:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0]:
                break
            if time.monotonic() > deadline:
                raise LockTimeout(f"another promotion of this model held the lock for over {timeout:g} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"another promotion of this model held {path} for over {timeout:g} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
