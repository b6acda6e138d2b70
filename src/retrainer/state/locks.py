"""Per-model locks: one promotion at a time (around every move of ``@champion``), and one monitor
run at a time taking batches from the landing location (``intake_lock``).

Two layers:
1. always, a lock where the registry lives, so that a person's ``retrainer promote`` on a
   laptop without Prefect excludes a worker's promotion too:
   - a PostgreSQL store (``postgresql://…``, or ``promotion.lock_url`` for an MLflow server on
     PostgreSQL): a session-level advisory lock in that database, released by the server when a
     killed process's connection drops;
   - anything else (SQLite, a local file store): an exclusive ``flock`` (filelock) on a file in the work dir,
     released by the kernel when the holder dies. It excludes processes of one machine only: with
     an MLflow server used from several machines, set ``promotion.lock_url`` (PostgreSQL).
2. then, with a Prefect server, a Prefect global concurrency limit of one slot per model, so that
   the UI shows the promotion under way: ``retrainer.pipeline.concurrency.promotion_lock`` adds
   it around this module's lock (Prefect lives in ``pipeline`` only).
The lock is the first guard; the compare-and-set in ``ModelRegistry.promote`` (``@champion`` still
where it was at decision time) is the second.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from retrainer.config import RetrainerConfig
from retrainer.errors import UserError


class LockTimeout(UserError):
    """Another promotion of the same model held the lock for longer than the timeout."""


def lock_key(model: str, purpose: str = "promote") -> int:
    """A stable signed 64-bit advisory-lock key for a model name and what the lock guards."""
    digest = hashlib.sha256(f"retrainer:{purpose}:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_url(config: RetrainerConfig) -> str | None:
    return _libpq_url(config.promotion.lock_url or config.tracking_uri)


def _libpq_url(url: str) -> str | None:
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
        lock = _advisory_lock(url, lock_key(config.registered_model), timeout)
    else:
        # Named after the registered model: two configs sharing it exclude each other.
        lock = machine_lock(config.storage.workdir / "locks" / f"promote-{_file_name(config.registered_model)}.lock",
                            timeout)
    with lock:
        yield


def _file_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", model)


@contextmanager
def intake_lock(config: RetrainerConfig, timeout_seconds: float | None = None) -> Iterator[None]:
    """One monitor run per model takes batches from the landing location at a time: an overlapping
    schedule or a second worker waits, then leaves the landing to the run that holds it. `retrainer
    requeue` holds it too: the quarantined batches it runs again are taken in like landed ones.

    Where the ledger lives: a PostgreSQL advisory lock in the ledger's database (workers on several
    machines), else a file lock in the work dir. Both die with a killed holder, so a restarted
    worker takes over at once and redoes the unfinished claim.
    """
    timeout = config.intake.lock_timeout_seconds if timeout_seconds is None else timeout_seconds
    url = _libpq_url(config.ledger_url)
    if url is not None:
        with _advisory_lock(url, lock_key(config.model.name, "intake"), timeout, "monitor or requeue run"):
            yield
    else:
        path = config.storage.workdir / "locks" / f"intake-{_file_name(config.model.name)}.lock"
        with machine_lock(path, timeout, "monitor or requeue run"):
            yield


@contextmanager
def _advisory_lock(url: str, key: int, timeout: float, holder: str = "promotion") -> Iterator[None]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        deadline = time.monotonic() + timeout
        while True:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0]:
                break
            if time.monotonic() > deadline:
                raise LockTimeout(f"another {holder} of this model held the lock for over {timeout:g} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def machine_lock(path: Path, timeout: float | None = None, holder: str = "promotion") -> Iterator[None]:
    """Exclusive among the processes of this machine: filelock's `flock`, which the kernel releases
    when a holder dies (no soft fallback: a lock file left by a killed process would block forever).
    Waits for ever without a `timeout`; else raises LockTimeout naming the `holder` it waited for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=-1 if timeout is None else timeout, fallback_to_soft=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockTimeout(f"another {holder} of this model held {path} for over {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()
