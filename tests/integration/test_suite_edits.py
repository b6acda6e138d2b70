"""Data engineers own the suite: an edit on disk changes the very next cycle, and `suite check` previews it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrainer.config import load_config
from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch, write_scenario
from retrainer.steps import suites as suite_commands

pytestmark = pytest.mark.integration


def _fahrenheit_batch(path: Path, seed: int) -> Path:
    make_batch(ScriptedBatch(path.stem, "°F", "x", fahrenheit=True), 3, 1500, np.random.default_rng(seed)).to_csv(
        path, index=False)
    return path


def test_editing_the_suite_changes_the_next_cycle(prefect_api: str, tmp_path: Path) -> None:
    """A °F batch is rejected; after the engineer widens the temperature mean bounds in the JSON file, the next °F batch is accepted."""
    from retrainer.pipeline.flows import monitor_batch

    write_scenario(tmp_path / "batches", rows=1500, seed=21,
                   script=(ScriptedBatch("d1", "stable", "init"), ScriptedBatch("d2", "stable", "none")))
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", name="pumps")
    config_path = result.config_path
    config = load_config(config_path)

    first = monitor_batch(str(config_path), str(_fahrenheit_batch(tmp_path / "f1.csv", 1)))
    assert first["decision"] == "reject_batch"

    suite = json.loads(config.suite_path.read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "temperature_c" and "between" in expectation["type"]:
            expectation["kwargs"]["max_value"] = 250.0  # the sensor fleet now reports °F: accept it
    config.suite_path.write_text(json.dumps(suite, indent=2))

    rows = {row.batch: row for row in suite_commands.check(config, last=4)}
    assert rows["f1"].recorded == "rejected"
    assert rows["f1"].now == "accepted"
    assert rows["f1"].changed
    assert not rows["d2"].changed

    # The very file that was rejected runs again after the fix: not a duplicate, since it was never used.
    again = monitor_batch(str(config_path), str(tmp_path / "f1.csv"))
    assert again["valid"]
    assert not any(f.startswith("duplicate") for f in again["validation_failures"])

    second = monitor_batch(str(config_path), str(_fahrenheit_batch(tmp_path / "f2.csv", 2)))
    # Accepted now: the champion, trained on °C, does badly on it, so the policy may well retrain.
    assert second["valid"]
    assert second["decision"] != "reject_batch"
    assert second["validation_failures"] == []
