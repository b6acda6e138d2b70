"""Webhook notifications reach a real local HTTP receiver; a dead webhook never fails a cycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch, write_scenario

pytestmark = pytest.mark.integration


def test_rejection_and_retrain_are_posted_to_the_webhook(
    prefect_api: str, receiver: tuple[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected batch and a promoted retrain each post their decision record; quiet batches post nothing."""
    url, received = receiver
    monkeypatch.setenv("RETRAINER_NOTIFICATIONS__WEBHOOK_URL", url)
    script = (
        ScriptedBatch("n1", "stable", "init"),
        ScriptedBatch("n2", "stable", "none"),
        ScriptedBatch("n3", "°F", "reject_batch", fahrenheit=True),
        ScriptedBatch("n4", "concept change", "retrain", concept=1),
    )
    write_scenario(tmp_path / "batches", rows=1200, seed=8, script=script)
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", name="pumps")
    assert [r.decision for r in result.records] == ["init", "none", "reject_batch", "retrain"]
    assert [(m["record"]["batch"], m["events"]) for m in received] == [
        ("n3", ["reject_batch"]), ("n4", ["retrain", "promote"])]
    assert received[0]["text"].startswith("pumps: batch n3 -> reject_batch (critical: expect_column_mean_to_be_between")
    assert url not in (tmp_path / "work" / "retrainer.yaml").read_text()  # secrets stay in the environment


def test_an_unreachable_webhook_does_not_fail_the_cycle(prefect_api: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the webhook down, the rejected batch is still quarantined and recorded."""
    monkeypatch.setenv("RETRAINER_NOTIFICATIONS__WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens")
    script = (ScriptedBatch("u1", "stable", "init"),)
    write_scenario(tmp_path / "batches", rows=800, seed=9, script=script)
    make_batch(ScriptedBatch("u2", "°F", "x", fahrenheit=True), 1, 800, np.random.default_rng(1)).to_csv(
        tmp_path / "batches" / "u2.csv", index=False)
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", name="pumps")
    assert [r.decision for r in result.records] == ["init", "reject_batch"]
    assert (tmp_path / "work" / "models" / "pumps" / "quarantine" / "u2.csv").exists()
