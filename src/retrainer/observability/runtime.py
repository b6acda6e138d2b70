"""Timing of cycle stages, and the environment that keeps the libraries quiet and local."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Telemetry of every library in the stack, off: a pipeline must not phone home from a
# production network, and tests must stay hermetic.
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "TQDM_DISABLE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PYTHONWARNINGS": "ignore",
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
        if prefect_home is not None and "PREFECT_API_URL" not in os.environ:
            start_local_api(prefect_home / LOCAL_API_LOG)


# Where the local API's own output goes when retrainer starts it (under PREFECT_HOME).
LOCAL_API_LOG = "local-api.log"


def start_local_api(log_file: Path) -> None:
    """Start Prefect's local (ephemeral) API now, its output written to `log_file`, not the terminal.

    Prefect starts that server lazily as a child process that shares our stderr, and at shutdown its
    database driver can print a cancelled-connection traceback there after the command has finished
    (seen once in ~10 demo runs): noise on a person's terminal and in a cron mail. The child inherits
    whatever file descriptor 2 is when it is spawned, so it is spawned here with 2 pointing at the log;
    our own stderr is back before this returns. Prefect reuses this one server (it keeps one per port)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_ENABLED

    server = SubprocessASGIServer()
    if server.running or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log_file.open("ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                server.start()
            finally:
                os.dup2(saved, 2)
    except RuntimeError as exc:  # Prefect's own "timed out" message; the server's own words are in the log
        raise RuntimeError(f"{exc} (the local Prefect API's output is in {log_file})") from None
    finally:
        os.close(saved)


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
