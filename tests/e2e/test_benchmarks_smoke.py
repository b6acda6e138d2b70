"""Smoke runs of the benchmark scripts on tiny sizes: each runs from the checkout with one command and
prints its table. The figures themselves are for docs/benchmarks.md, not for a test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str, cwd: Path) -> str:
    environment = {**os.environ, "PREFECT_HOME": str(cwd / "prefect"), "PYTHONWARNINGS": "ignore"}
    environment.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_decision_quality_prints_policies_and_targets(tmp_path: Path) -> None:
    out = _run("decision_quality.py", "--direct", "--streams", "abrupt-concept", "--rows", "400", "--max-batches", "10",
               "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    assert "== abrupt-concept" in out
    for policy in ("retrainer", "never", "every-5", "every-batch", "drift-trigger"):
        assert f"\n  {policy} " in out
    assert "delay <= 1 batch on abrupt changes" in out
    assert "targets missed:" in out


def test_cycle_speed_prints_stages_and_ratios(tmp_path: Path) -> None:
    out = _run("cycle_speed.py", "--sizes", "1000", "--small-rows", "500", "--workdir", str(tmp_path / "work"),
               cwd=tmp_path)
    for stage in ("read", "validate", "score", "drift", "decide", "record"):
        assert f"\n  {stage} " in out
    assert "cycle, Prefect" in out
    assert "orchestration overhead" in out
    assert "per-column verdicts identical" in out
    assert "whole cycle, 500 rows" in out


def test_scale_out_runs_models_on_a_dask_cluster(tmp_path: Path) -> None:
    """Two models in one `monitor-fleet` flow run on a real Dask LocalCluster (prefect-dask): both cycles
    complete, serially and in parallel."""
    out = _run("scale_out.py", "--models", "2", "--rows", "400", "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    row = next(line.split() for line in out.splitlines() if re.match(r"\s+2\s+[\d.]+\s", line))
    assert row[6] == "0", out  # no failed cycle
    assert "targets missed:" in out


def test_spark_check_compares_both_paths(tmp_path: Path) -> None:
    """Validation and drift of one batch on Spark local mode and on pandas: same verdicts."""
    pytest.importorskip("pyspark")
    out = _run("spark_check.py", "--sizes", "2000", "--features", "4", "--workdir", str(tmp_path / "work"),
               cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.strip().startswith("2,000"))
    assert "| yes (accepted: True/True; drifted: n0,c1 / n0,c1)" in row, out
