"""Smoke run of benchmarks/scale_out.py on tiny sizes: it runs with one command and prints its table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .benchmarks import run_benchmark

pytestmark = pytest.mark.e2e


def test_scale_out_runs_models_on_a_dask_cluster(tmp_path: Path) -> None:
    """Two models in one `monitor-fleet` flow run on a real Dask LocalCluster (prefect-dask): both cycles
    complete, serially and in parallel."""
    out = run_benchmark("scale_out.py", "--models", "2", "--rows", "400", "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    row = next(line.split() for line in out.splitlines() if re.match(r"\s+2\s+[\d.]+\s", line))
    assert row[6] == "0", out  # no failed cycle
    assert "targets missed:" in out
