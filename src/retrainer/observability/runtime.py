"""Timing of cycle stages, and the environment that keeps the libraries quiet and local."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Telemetry of every library in the stack, off: a pipeline must not phone home from a
# production network, and tests must stay hermetic. And the libraries' output kept off a person's terminal.
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "TQDM_DISABLE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PYTHONWARNINGS": "ignore",
    # A person's stdout holds what retrainer prints (a record, a table), not MLflow's "View run" links.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # MLflow retries a failing request 7 times with backoff factor 2 by default: ~4 min before an error.
    # 3 retries from 1 s (~7 s) still ride out a server restart; an unreachable server fails at once
    # (registry.tracking.check_reachable).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    # And a request waits 60 s for an answer, not MLflow's 120 s (a read timeout: a long upload that
    # keeps moving is not cut); a server that never answers is caught before by check_reachable.
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


def prepare_environment(prefect_home: Path | None = None, verbose: bool = False) -> None:
    """Set before Prefect is imported: its settings are read once, at import."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    if prefect_home is not None and "PREFECT_API_URL" not in os.environ:
        prefect_home.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PREFECT_HOME", str(prefect_home))
        # A new PREFECT_HOME migrates the local API's database at its first start: ~20 s on two
        # cores, Prefect's own startup limit, so a first `retrainer demo` could time out.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        if not verbose:
            # The local API's own SQLite store is briefly locked under long cycles; its event
            # recorder logs a traceback and retries the write (nothing is lost). That server is
            # ours, not the user's: its internals show with -v only.
            os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # A failing task logs its traceback at ERROR; the command line reports the error in one
        # line itself, and a failed retrain is a reason in the decision record.
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "CRITICAL")


class StageTimer:
    """Seconds spent per named stage of a cycle, summed when a stage repeats."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as the stage `name`, added to what that stage took before."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        """The seconds per stage, rounded to a tenth of a millisecond."""
        return {name: round(value, 4) for name, value in self.seconds.items()}
