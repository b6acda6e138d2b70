"""Smoke run of benchmarks/spark_check.py on tiny sizes: it runs with one command and prints its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from .benchmarks import run_benchmark

pytestmark = pytest.mark.e2e


def test_spark_check_compares_both_paths(tmp_path: Path) -> None:
    """Validation and drift of one batch on Spark local mode and on pandas: same verdicts."""
    pytest.importorskip("pyspark")
    out = run_benchmark("spark_check.py", "--sizes", "2000", "--features", "4", "--workdir", str(tmp_path / "work"),
                        cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.strip().startswith("2,000"))
    assert "| yes (accepted: True/True; drifted: n0,c1 / n0,c1)" in row, out
