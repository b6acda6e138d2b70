"""`retrainer suite draft|check|docs` as a data engineer runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .cli import binary_batch, run_cli

pytestmark = pytest.mark.e2e


def test_suite_commands_draft_check_and_docs(tmp_path: Path) -> None:
    """`suite draft` writes a suite, `suite check` previews the current suite on kept batches, `suite docs` builds a site."""
    rng = np.random.default_rng(6)
    batches = tmp_path / "batches"
    batches.mkdir()
    for i in range(3):
        binary_batch(rng, 600).to_csv(batches / f"{i}.csv", index=False)
    binary_batch(rng, 600).drop(columns=["x3"]).to_csv(batches / "3.csv", index=False)
    workdir = tmp_path / "w"
    done = run_cli("backtest", str(batches), "--target", "y", "--workdir", str(workdir))
    assert done.returncode == 0, done.stderr[-2000:]
    config = str(workdir / "retrainer.yaml")

    done = run_cli("suite", "draft", "--config", config, "--data", str(batches / "0.csv"), timeout=120)
    assert done.returncode == 2
    assert "exists (it may hold edits)" in done.stderr
    draft = tmp_path / "draft.json"
    done = run_cli("suite", "draft", "--config", config, "--data", str(batches / "0.csv"), "--out", str(draft),
                   timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {e["severity"] for e in json.loads(draft.read_text())["expectations"]} == {"critical", "warning"}

    done = run_cli("suite", "check", "--config", config, "--last", "3", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("3 ") and "rejected  rejected" in line for line in lines)
    assert lines[-1] == "0 of 3 batch(es) would change outcome"

    done = run_cli("suite", "docs", "--config", config, "--out", str(tmp_path / "docs"), timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    index = tmp_path / "docs" / "index.html"
    assert index.exists()
    assert "y" in index.read_text()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))
