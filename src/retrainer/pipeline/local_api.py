"""Prefect's local (ephemeral) API, started by retrainer for a command that has no configured one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from retrainer.observability import prepare_environment

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


def prepare_local_run(prefect_home: Path, verbose: bool = False) -> None:
    """The environment of a command that runs flows (`prepare_environment`), then, without a configured
    Prefect API and unless verbose, the local API started quietly (`start_local_api`)."""
    prepare_environment(prefect_home=prefect_home, verbose=verbose)
    if not verbose and "PREFECT_API_URL" not in os.environ:
        start_local_api(prefect_home / LOCAL_API_LOG)
