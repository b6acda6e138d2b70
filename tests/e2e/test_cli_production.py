"""The production path on the command line: `init`, `run`, `status`, `rollback`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from .cli import binary_batch, run_cli

pytestmark = pytest.mark.e2e


def test_init_then_run_one_batch_with_a_config_file(tmp_path: Path) -> None:
    """The production path: `init` trains v1 and drafts the suite, `run` prints one decision record."""
    rng = np.random.default_rng(4)
    binary_batch(rng, 1500).to_parquet(tmp_path / "first.parquet", index=False)
    broken = binary_batch(rng, 800).drop(columns=["x2"])
    broken.to_csv(tmp_path / "next.csv", index=False)
    config = tmp_path / "retrainer.yaml"
    config.write_text("model:\n  name: churn\n  target: y\nstorage:\n  workdir: state\n")
    done = run_cli("init", "--config", str(config), "--data", str(tmp_path / "first.parquet"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["champion_version"] == "1"
    assert (tmp_path / "expectations" / "churn.json").exists()
    done = run_cli("run", "--config", str(config), str(tmp_path / "next.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["decision"] == "reject_batch"
    assert record["validation_failures"] == ["missing required column(s): x2"]
    quarantined = tmp_path / "state" / "models" / "churn" / "quarantine" / "next.csv"
    assert quarantined.read_bytes() == broken.to_csv(index=False).encode()
    assert not (tmp_path / "next.csv").exists()  # `run` moves a rejected batch out of its landing place
    # A cron or Airflow wrapper that must fail on a rejected batch asks for it; the record is printed all the same.
    broken.to_csv(tmp_path / "again.csv", index=False)
    done = run_cli("run", "--config", str(config), "--fail-on-reject", str(tmp_path / "again.csv"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout)["decision"] == "reject_batch"


def _init_against(tmp_path: Path, port: int) -> tuple[subprocess.CompletedProcess[str], float]:
    """`retrainer init` with the tracking server at a loopback port: the finished command and its seconds."""
    config = tmp_path / "retrainer.yaml"
    config.write_text(f"model:\n  name: churn\n  target: y\nmlflow:\n  tracking_uri: http://127.0.0.1:{port}\n")
    started = time.monotonic()
    done = run_cli("init", "--config", str(config), "--data", str(tmp_path / "first.csv"), timeout=120)
    return done, time.monotonic() - started


def test_an_unreachable_tracking_server_fails_fast_in_one_full_line(tmp_path: Path) -> None:
    """No MLflow server at the configured address: `init` says so at once (MLflow alone would retry for
    minutes), in one whole line naming the address, exit 3."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary_batch(np.random.default_rng(4), 300).to_csv(tmp_path / "first.csv", index=False)
    done, seconds = _init_against(tmp_path, port)
    assert seconds < 30
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"retrainer: error: MLflow tracking server http://127.0.0.1:{port} is unreachable: connection refused "
        "(mlflow.tracking_uri)"], done.stderr

    # A process that holds the port and takes connections but never answers: the same, within seconds.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nothing reads or answers them
        silent_port = silent.getsockname()[1]
        hung, seconds = _init_against(tmp_path, silent_port)
        assert seconds < 30
    assert hung.returncode == 3
    assert hung.stderr.strip().splitlines() == [
        f"retrainer: error: MLflow tracking server http://127.0.0.1:{silent_port} took the connection but did not "
        "answer within 15 s (mlflow.tracking_uri)"], hung.stderr
