"""Helpers of the benchmark smoke runs: a benchmark script run from the checkout with one command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_benchmark(script: str, *args: str, cwd: Path) -> str:
    """The script's output; its flows report to a Prefect server it starts."""
    environment = {**os.environ, "PREFECT_HOME": str(cwd / "prefect"), "PYTHONWARNINGS": "ignore"}
    environment.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
