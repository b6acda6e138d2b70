"""`retrainer demo`, the main job, as a new user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli import read_timeline, run_cli

pytestmark = pytest.mark.e2e


def test_demo_handles_every_scripted_event(tmp_path: Path) -> None:
    """`retrainer demo` exits 0, rejects the broken batches, retrains on the concept change (then once more to
    widen the post-change window) and leaves its config."""
    workdir = tmp_path / "demo"
    done = run_cli("demo", "--workdir", str(workdir), "--rows", "1500")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "day-09" in done.stdout
    assert "Traceback" not in done.stderr
    # The local Prefect API the demo starts writes its own output (shutdown noise included) to its log.
    assert (workdir / "prefect" / "local-api.log").is_file()
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
    assert "Downloading artifacts" not in status.stderr  # no library progress bars on a person's terminal
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
