"""`retrainer backtest` on batch folders it has never seen: binary, multiclass and regression targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .cli import binary_batch, features, read_timeline, run_cli

pytestmark = pytest.mark.e2e


def test_backtest_binary_csv_with_time_column_and_a_malformed_file(tmp_path: Path) -> None:
    """A CSV stream with a time column, a broken file and a concept flip: the broken file is rejected with its reason and the flip is retrained."""
    rng = np.random.default_rng(1)
    batches = tmp_path / "batches"
    batches.mkdir()
    for i in range(6):
        frame = binary_batch(rng, 1200, flipped=i >= 4)
        frame.insert(0, "ts", pd.date_range(f"2026-01-{i + 1:02d}", periods=len(frame), freq="min"))
        frame.to_csv(batches / f"{i:02d}.csv", index=False)
    (batches / "02b_broken.csv").write_bytes(b"x1,x2\n1,2\n\xff\xfe garbage \x00\n")
    out = tmp_path / "out.json"
    done = run_cli("backtest", str(batches), "--target", "y", "--json", str(out), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 0, done.stderr[-2000:]
    timeline = read_timeline(out)
    decisions = {b["batch"]: b["decision"] for b in timeline["batches"]}
    assert decisions["00"] == "init"
    assert decisions["02b_broken"] == "reject_batch"
    broken = next(b for b in timeline["batches"] if b["batch"] == "02b_broken")
    assert broken["validation_failures"] == ["unreadable: not UTF-8 text (byte 0xff at offset 10); save the file as UTF-8"]
    assert decisions["04"] == "retrain"
    assert timeline["summary"]["promotions"] == 1
    assert [b["batch"] for b in timeline["batches"]] == ["00", "01", "02", "02b_broken", "03", "04", "05"]
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout
    config = (tmp_path / "w" / "retrainer.yaml").read_text()
    assert "time_column: ts" in config
    assert "task: classification" in config


def test_backtest_multiclass_parquet_without_time_column(tmp_path: Path) -> None:
    """Parquet batches with a string multiclass target and no time column back-test with everything inferred."""
    rng = np.random.default_rng(2)
    batches = tmp_path / "batches"
    batches.mkdir()
    for i in range(4):
        frame = features(rng, 1000)
        frame["y"] = np.select([frame.x1 > 0.5, frame.x1 < -0.5], ["high", "low"], "mid")
        frame.to_parquet(batches / f"part-{i}.parquet", index=False)
    out = tmp_path / "out.json"
    done = run_cli("backtest", str(batches), "--target", "y", "--json", str(out), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 0, done.stderr[-2000:]
    timeline = read_timeline(out)
    assert [b["decision"] for b in timeline["batches"]] == ["init", "none", "none", "none"]
    assert all(b["metric_name"] == "accuracy" and b["metric"] > 0.9 for b in timeline["batches"][1:])


def test_backtest_regression_target(tmp_path: Path) -> None:
    """A numeric target is a regression: RMSE is the metric, and a jump in error retrains."""
    rng = np.random.default_rng(3)
    batches = tmp_path / "batches"
    batches.mkdir()
    for i in range(5):
        frame = features(rng, 1000)
        slope = 3.0 if i < 3 else -3.0
        frame["y"] = slope * frame.x1 + frame.x3 + rng.normal(0, 0.5, len(frame))
        frame.to_csv(batches / f"{i}.csv", index=False)
    out = tmp_path / "out.json"
    done = run_cli("backtest", str(batches), "--target", "y", "--json", str(out), "--workdir", str(tmp_path / "w"))
    assert done.returncode == 0, done.stderr[-2000:]
    batches_out = read_timeline(out)["batches"]
    assert all(b["metric_name"] == "rmse" for b in batches_out[1:])
    assert [b["decision"] for b in batches_out] == ["init", "none", "none", "retrain", "none"]
    assert batches_out[4]["metric"] < batches_out[3]["metric"] / 2
