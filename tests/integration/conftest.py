from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

POSTGRES = os.environ.get("RETRAINER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skipped without a server unless CI=true."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES} is required under CI=true: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES} ({str(exc).strip().splitlines()[0]})")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database("retrainer_test") as url:
        yield url


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on loopback that keeps every JSON body posted to it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def initialise_model(root: Any, settings: dict[str, Any], first_batch: Any) -> Any:
    """Model `pumps` with champion v1 trained on `first_batch`: the config (no cool-down, plus `settings`,
    whose sections replace the defaults' whole) written to root/retrainer.yaml, the columns inferred as
    `retrainer init` does. Returns the config path."""
    import pandas as pd
    import yaml

    from retrainer.config import load_config
    from retrainer.core.schema import resolve_model_settings
    from retrainer.pipeline.flows import initialise_champion
    from retrainer.replay.scenario import TARGET
    from retrainer.state.stores import save_model_settings

    config = root / "retrainer.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET},
                                      "policy": {"cooldown_batches": 0}, **settings}), encoding="utf-8")
    loaded = load_config(config)
    save_model_settings(loaded, resolve_model_settings(pd.read_csv(first_batch), loaded.model))
    initialise_champion(str(config), [str(first_batch)])
    return config


def start_together(commands: list[list[str]], env: dict[str, str] | None, warm_up_seconds: float,
                   timeout: float) -> list[str]:
    """Start processes that wait for a line on stdin, let them import, release them at once, and
    return each one's last line of output (each must exit 0)."""
    import subprocess
    import time

    processes = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for command in commands]
    time.sleep(warm_up_seconds)
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    lines = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err[-2000:]
        lines.append(out.strip().splitlines()[-1])
    return lines


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real `mlflow server` on loopback with a PostgreSQL backend store, started with the shipped
    launcher (mlflow_config/serve.sh). Yields (server URL, its PostgreSQL database URL)."""
    with fresh_postgres_database("retrainer_server") as database:
        yield from _serve(database, tmp_path_factory)


def _stop_group(process: Any, grace_seconds: float) -> None:
    """SIGTERM a process started in a session of its own, and its children; SIGKILL after the grace."""
    import signal
    import subprocess

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _serve(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    port = _free_port()
    root = tmp_path_factory.mktemp("mlflow-server")
    env = {**os.environ, "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(port),
           "MLFLOW_BACKEND_STORE_URI": database, "MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    launcher = Path(__file__).resolve().parents[2] / "mlflow_config" / "serve.sh"
    log = open(root / "server.log", "w")  # noqa: SIM115 (a server's log for as long as it runs; closed in its stop)
    server = subprocess.Popen(["bash", str(launcher)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, database
    finally:
        _stop_group(server, 30)
        log.close()


MLFLOW_TEST_USER, MLFLOW_TEST_PASSWORD = "admin", "retrainer-test-password"


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The non-Docker production recipe, as a user starts it: `deploy/run-stack.sh` with a Prefect server
    and an MLflow server (basic-auth app on) on fresh PostgreSQL databases, on loopback. Yields the
    environment a worker on that stack needs (PREFECT_API_URL, MLflow URL and credentials)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    with fresh_postgres_database("retrainer_prefect") as prefect_db, \
            fresh_postgres_database("retrainer_mlflow") as mlflow_db:
        root = tmp_path_factory.mktemp("stack")
        prefect_port, mlflow_port = _free_port(), _free_port()
        env = {**os.environ,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "PREFECT_DATABASE_URL": prefect_db.replace("postgresql://", "postgresql+asyncpg://", 1),
               "MLFLOW_BACKEND_STORE_URI": mlflow_db, "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_TEST_PASSWORD,
               "RETRAINER_STACK_DIR": str(root), "PREFECT_PORT": str(prefect_port), "MLFLOW_PORT": str(mlflow_port)}
        env.pop("PREFECT_API_URL", None)
        script = Path(__file__).resolve().parents[2] / "deploy" / "run-stack.sh"
        out = open(root / "run-stack.out", "w+")  # noqa: SIM115 (a server's log for as long as it runs; closed in its stop)
        stack = subprocess.Popen(["bash", str(script)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while "stack ready" not in (root / "run-stack.out").read_text():
                if stack.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"deploy/run-stack.sh did not start: {(root / 'run-stack.out').read_text()[-2000:]}")
                time.sleep(0.5)
            yield {"PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
                   "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
                   "MLFLOW_TRACKING_USERNAME": MLFLOW_TEST_USER, "MLFLOW_TRACKING_PASSWORD": MLFLOW_TEST_PASSWORD,
                   "STACK_DIR": str(root)}
        finally:
            _stop_group(stack, 60)
            out.close()


def screenshot_path(name: str) -> Path | None:
    """Where to save a page's screenshot: a PNG in $TEST_SCREENSHOTS when set (to look at what a test
    read), else none is taken."""
    folder = os.environ.get("TEST_SCREENSHOTS")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / f"{name}.png"


def browser_text(url: str, screenshot: Path | None = None) -> str:
    """What a person reads on a page once a real headless Chromium has run its scripts (the Prefect and MLflow
    UIs are single-page apps: their HTML holds no content until a browser runs them), as plain text; with
    `screenshot`, the page is also saved as a PNG there. Skips without Chromium, fails so under CI=true."""
    import html
    import re
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
             "--window-size=1400,1000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    if screenshot is not None:
        subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()
