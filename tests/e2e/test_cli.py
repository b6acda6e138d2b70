"""The installed `retrainer` command as a user runs it, on data it has never seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

RETRAINER = str(Path(sys.executable).with_name("retrainer"))


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    return subprocess.run([RETRAINER, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "x1": rng.normal(shift, 1, rows),
        "x2": rng.normal(0, 1, rows),
        "x3": rng.uniform(0, 10, rows),
        "colour": rng.choice(["red", "green", "blue"], rows),
        "size": rng.choice(["S", "M", "L", "XL"], rows),
    })


def binary_batch(rng: np.random.Generator, rows: int, flipped: bool = False) -> pd.DataFrame:
    frame = _features(rng, rows)
    signal = frame.x1 + 0.5 * frame.x2 + (frame.colour == "red") - 0.5
    frame["y"] = ((-signal if flipped else signal) + rng.normal(0, 0.3, rows) > 0).astype(int)
    return frame


def read_timeline(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert set(document) == {"batches", "summary"}
    assert {"retrains", "promotions", "rejected_batches", "mean_metric"} <= set(document["summary"])
    return document


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
        frame = _features(rng, 1000)
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
        frame = _features(rng, 1000)
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


def test_demo_handles_every_scripted_event(tmp_path: Path) -> None:
    """`retrainer demo` exits 0, rejects the broken batches, retrains on the concept change (then once more to
    widen the post-change window) and leaves its config."""
    workdir = tmp_path / "demo"
    done = run_cli("demo", "--workdir", str(workdir), "--rows", "1500")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "day-09" in done.stdout
    assert "Traceback" not in done.stderr
    timeline = read_timeline(workdir / "timeline.json")
    decisions = {b["batch"]: b["decision"] for b in timeline["batches"]}
    assert decisions["day-08"] == decisions["day-09"] == "reject_batch"
    assert decisions["day-11"] == "retrain"
    assert [name for name, d in decisions.items() if d == "retrain"] == ["day-11", "day-13"]
    followup = next(b for b in timeline["batches"] if b["batch"] == "day-13")
    assert followup["followup"]
    assert followup["reasons"][0].startswith("follow-up")
    assert next(b for b in timeline["batches"] if b["batch"] == "day-11")["promoted"]
    assert timeline["summary"]["promotions"] >= 1
    assert (workdir / "retrainer.yaml").exists()
    # The config the demo leaves works for the registry commands right after it.
    status = run_cli("status", "--config", str(workdir / "retrainer.yaml"), "--json", timeout=120)
    assert status.returncode == 0, status.stderr[-2000:]
    document = json.loads(status.stdout)
    champion = timeline["batches"][-1]["champion_version"]
    assert document["champion"] == champion
    assert document["previous_champion"] == "1"
    assert isinstance(document["history"], list)
    assert document["history"][0]["to_version"] == "1"
    rolled = run_cli("rollback", "--config", str(workdir / "retrainer.yaml"), timeout=120)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    after = json.loads(run_cli("status", "--config", str(workdir / "retrainer.yaml"), "--json", timeout=120).stdout)
    assert (after["champion"], after["previous_champion"]) == ("1", champion)
    assert len(after["history"]) == len(document["history"]) + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("backtest", "/nonexistent/batches", "--target", "y"), "/nonexistent/batches: not a folder of batch files"),
        (("run", "--config", "/nonexistent/retrainer.yaml", "b.csv"), "/nonexistent/retrainer.yaml: config file not found"),
    ],
)
def test_bad_input_gives_one_line_error(args: tuple[str, ...], message: str) -> None:
    """A wrong path exits with status 2 and one line naming it, no traceback."""
    done = run_cli(*args, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"retrainer: error: {message}"


def test_bad_config_setting_is_named(tmp_path: Path) -> None:
    """An invalid setting in the config file is reported by its dotted name."""
    config = tmp_path / "retrainer.yaml"
    config.write_text("model:\n  target: y\npromotion:\n  mode: sometimes\n")
    done = run_cli("run", "--config", str(config), str(config), timeout=120)
    assert done.returncode == 2
    assert "setting 'promotion.mode'" in done.stderr
    assert "Traceback" not in done.stderr


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
