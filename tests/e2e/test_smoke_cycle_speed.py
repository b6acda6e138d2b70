"""Smoke run of benchmarks/cycle_speed.py on tiny sizes: it runs with one command and prints its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from .benchmarks import run_benchmark

pytestmark = pytest.mark.e2e


def test_cycle_speed_prints_stages_and_ratios(tmp_path: Path) -> None:
    out = run_benchmark("cycle_speed.py", "--sizes", "1000", "--small-rows", "500", "--reference-rows", "2000",
                        "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    for stage in ("read", "validate", "score", "drift", "decide", "record"):
        assert f"\n  {stage} " in out
    assert "cycle, Prefect" in out
    assert "orchestration overhead" in out
    assert "per-column verdicts identical" in out
    assert "the numpy floor" in out
    assert "GE BOOLEAN_ONLY" in out
    assert "whole cycle, 500 rows" in out
