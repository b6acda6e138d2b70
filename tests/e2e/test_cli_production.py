"""The production path on the command line: `init`, `run`, `status`, `rollback`."""

from __future__ import annotations

import json
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
