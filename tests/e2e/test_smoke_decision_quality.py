"""Smoke run of benchmarks/decision_quality.py on tiny sizes: it runs with one command and prints its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from .benchmarks import run_benchmark

pytestmark = pytest.mark.e2e


def test_decision_quality_prints_policies_and_targets(tmp_path: Path) -> None:
    out = run_benchmark("decision_quality.py", "--direct", "--streams", "abrupt-concept", "--rows", "400", "--max-batches", "10",
                        "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    assert "== abrupt-concept" in out
    for policy in ("retrainer", "never", "every-5", "every-batch", "drift-trigger"):
        assert f"\n  {policy} " in out
    assert "delay <= 1 batch on abrupt changes" in out
    assert "targets missed:" in out
