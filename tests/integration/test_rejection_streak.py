"""A suite that rejects batch after batch for the same reason escalates once, and after a fix the
quarantined batches run again through the cycle, each exactly once (real GE, MLflow store, the plain
cycle; the webhook is a real local HTTP receiver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retrainer.config import load_config
from retrainer.pipeline import cycle
from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario
from retrainer.state.journal import read_journal
from retrainer.state.locks import intake_lock
from retrainer.steps.operator import RegistryCommands, format_status

pytestmark = pytest.mark.integration

MEAN = "expect_column_mean_to_be_between(temperature_c)"


def test_a_rejection_streak_alerts_once_and_requeue_runs_each_quarantined_batch_once(
    receiver: tuple[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = receiver
    monkeypatch.setenv("RETRAINER_NOTIFICATIONS__WEBHOOK_URL", url)
    # The sensor firmware now reports °F on every batch: the drafted suite rejects each one on the mean.
    script = (ScriptedBatch("d1", "stable", "init"),
              *(ScriptedBatch(f"d{i}", "°F", "reject_batch", fahrenheit=True) for i in range(2, 6)))
    write_scenario(tmp_path / "batches", rows=800, seed=4, script=script)
    work = tmp_path / "work"
    result = run_backtest(tmp_path / "batches", TARGET, workdir=work, name="pumps", orchestrated=False)
    records = result.records
    assert [r.decision for r in records] == ["init"] + ["reject_batch"] * 4
    streaks = [(r.rejection_streak.batches, r.rejection_streak.alert) if r.rejection_streak else None
               for r in records[1:]]
    assert streaks == [None, (2, False), (3, True), (4, False)]
    assert records[3].reasons[-1].startswith(f"rejection streak: {MEAN} has rejected 3 batches in a row (since 'd2')")
    # The alert went out once, on the third rejection.
    events = [(body["record"]["batch"], body["events"]) for body in received]
    assert events == [("d2", ["reject_batch"]), ("d3", ["reject_batch"]), ("d4", ["reject_batch", "rejection_streak"]),
                      ("d5", ["reject_batch"])]

    config = load_config(work / "retrainer.yaml")
    status = RegistryCommands.open(config).status()
    assert status["rejection_streak"]["batches"] == 4
    assert "REJECTION STREAK" in format_status(status)
    champion = status["champion"]

    # The data engineer decides °F is right from now on: the temperature checks become warnings.
    suite = json.loads(config.suite_path.read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "temperature_c":
            expectation["severity"] = "warning"
    config.suite_path.write_text(json.dumps(suite))

    # While a monitor run holds the model's intake lock, `retrainer requeue` waits for it, then gives up
    # with one line and runs nothing.
    with intake_lock(config):
        blocked = subprocess.run([str(Path(sys.executable).with_name("retrainer")), "requeue", "--config",
                                  str(work / "retrainer.yaml")], capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "RETRAINER_INTAKE__LOCK_TIMEOUT_SECONDS": "1"})
    assert blocked.returncode != 0
    assert blocked.stderr.strip().splitlines() == [blocked.stderr.strip()]
    assert "another monitor or requeue run of this model held" in blocked.stderr
    assert len(read_journal(work / "models" / "pumps" / "timeline.jsonl")) == 5

    outcomes = cycle.requeue(cycle.PLAIN, str(work / "retrainer.yaml"))
    assert [(o["batch"], o["requeue_of"]) for o in outcomes] == [("d2", 1), ("d3", 2), ("d4", 3), ("d5", 4)]
    assert all(o["decision"] in ("none", "retrain") for o in outcomes)
    assert cycle.requeue(cycle.PLAIN, str(work / "retrainer.yaml")) == []  # each once

    journal = read_journal(work / "models" / "pumps" / "timeline.jsonl")
    rerun = [r for r in journal if r.requeue_of is not None]
    assert [(r.batch, r.batch_index, r.requeue_of) for r in rerun] == [
        ("d2", 5, 1), ("d3", 6, 2), ("d4", 7, 3), ("d5", 8, 4)]
    accepted = sorted(p.name for p in (work / "models" / "pumps" / "accepted").glob("*.parquet"))
    assert accepted == ["000000__d1.parquet", "000005__d2.parquet", "000006__d3.parquet", "000007__d4.parquet",
                        "000008__d5.parquet"]
    # The champion moved, if at all, only through a gate that passed.
    promoted = [r for r in rerun if r.promoted]
    assert all(r.gate is not None and r.gate.passed for r in promoted)
    after = RegistryCommands.open(config).status()
    assert after["champion"] == (promoted[-1].new_champion_version if promoted else champion)
    assert after["rejection_streak"] is None
