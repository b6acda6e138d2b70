"""Helpers of the command-line tests: the installed `retrainer` run as a user runs it, and batches it has never seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RETRAINER = str(Path(sys.executable).with_name("retrainer"))


def run_cli(*args: str, timeout: int = 600, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a command that runs flows starts a Prefect server of its own. (Sharing
    the test worker's API instead saved ~10 s a command but failed once in four CI runs: "State data is
    missing" from a retrain subflow while that SQLite API was locked.)"""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    env |= extra_env or {}
    return subprocess.run([RETRAINER, *args], capture_output=True, text=True, timeout=timeout, env=env)


def features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "x1": rng.normal(shift, 1, rows),
        "x2": rng.normal(0, 1, rows),
        "x3": rng.uniform(0, 10, rows),
        "colour": rng.choice(["red", "green", "blue"], rows),
        "size": rng.choice(["S", "M", "L", "XL"], rows),
    })


def binary_batch(rng: np.random.Generator, rows: int, flipped: bool = False) -> pd.DataFrame:
    frame = features(rng, rows)
    signal = frame.x1 + 0.5 * frame.x2 + (frame.colour == "red") - 0.5
    frame["y"] = ((-signal if flipped else signal) + rng.normal(0, 0.3, rows) > 0).astype(int)
    return frame


def read_timeline(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert set(document) == {"batches", "summary"}
    assert {"retrains", "promotions", "rejected_batches", "mean_metric"} <= set(document["summary"])
    return document
