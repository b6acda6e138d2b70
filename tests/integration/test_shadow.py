"""Shadow evaluation (`promotion.shadow_batches: 2`) through real cycles: a challenger that passed the gate on a
concept change predicts the next labelled batches beside the champion; a change that was a blip (the old
concept is back) retires it and @champion never moves; a change that lasts promotes it after the second
shadow batch, and the batch after is served by it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrainer.config import load_config
from retrainer.core.records import summarise
from retrainer.registry import ModelRegistry, connect
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

pytestmark = pytest.mark.integration


def _backtest(tmp_path: Path, after_change: int, orchestrated: bool) -> BacktestResult:
    """d1 trains v1, d2..d4 are stable, d5 brings the new concept (the retrain's challenger passes the gate and
    goes into shadow), then two batches labelled by concept `after_change` (the shadow batches) and one more."""
    script = (ScriptedBatch("d1", "stable", "init"),
              *(ScriptedBatch(f"d{day}", "stable", "none") for day in (2, 3, 4)),
              ScriptedBatch("d5", "concept", "retrain", concept=1),
              *(ScriptedBatch(f"d{day}", "after", "none", concept=after_change) for day in (6, 7, 8)))
    write_scenario(tmp_path / "batches", rows=1200, seed=5, script=script)
    config = tmp_path / "config" / "retrainer.yaml"
    config.parent.mkdir()
    # No retrain on d6..d8 (cooldown, no follow-up): what happens to the shadow challenger is the shadow's doing.
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET},
                                      "policy": {"cooldown_batches": 3, "followup_after_batches": None},
                                      "promotion": {"shadow_batches": 2}}), encoding="utf-8")
    return run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work",
                        orchestrated=orchestrated)


def _registry(result: BacktestResult) -> ModelRegistry:
    config = load_config(result.config_path)
    return ModelRegistry(connect(config), config)


def test_a_challenger_that_loses_on_the_next_live_batches_is_retired_not_promoted(prefect_api: str,
                                                                                  tmp_path: Path) -> None:
    """Better on d5's holdout (the new concept), worse on d6 and d7 (the old one is back): retired after d7 with
    the paired test's figures; v1 serves throughout. Through the Prefect flows, as `run` and `serve` do."""
    result = _backtest(tmp_path, after_change=0, orchestrated=True)
    records = {r.batch: r for r in result.records}
    retrain = records["d5"]
    assert (retrain.decision, retrain.promoted) == ("retrain", False)
    assert retrain.gate is not None
    assert retrain.gate.passed
    assert retrain.shadow is not None
    assert (retrain.shadow.outcome, retrain.shadow.version, retrain.shadow.needed) == ("started", "2", 2)
    first, second = records["d6"].shadow, records["d7"].shadow
    assert first is not None
    assert second is not None
    assert (first.outcome, first.batches) == ("running", 1)
    assert first.metric is not None
    assert first.champion_metric is not None
    assert first.metric < first.champion_metric  # the challenger learned a concept that did not last
    assert (second.outcome, second.batches) == ("retired", 2)
    assert second.reason is not None
    assert second.reason.startswith("shadow over 2 labelled batch(es), ")
    assert "not better" in second.reason
    assert records["d8"].shadow is None
    assert [r.champion_version for r in result.records] == ["1"] * 8
    assert summarise(result.records).promotions == 0
    registry = _registry(result)
    assert registry.version_by_alias("challenger") is None
    assert registry.version("2").tag("shadow") == "retired"


def test_a_challenger_that_wins_on_the_next_live_batches_is_promoted_after_them(tmp_path: Path) -> None:
    """The new concept lasts: the challenger beats v1 on d6 and d7 and is promoted in d7's cycle, so d8 is
    scored by it; the alias history says it came from shadow."""
    result = _backtest(tmp_path, after_change=1, orchestrated=False)
    records = {r.batch: r for r in result.records}
    assert records["d5"].shadow is not None
    assert records["d5"].shadow.outcome == "started"
    first, second = records["d6"].shadow, records["d7"].shadow
    assert first is not None
    assert second is not None
    assert first.outcome == "running"
    assert first.metric is not None
    assert first.champion_metric is not None
    assert first.metric > first.champion_metric
    assert second.outcome == "promoted"
    assert second.reason is not None
    assert "the challenger wins" in second.reason
    assert [r.champion_version for r in result.records] == ["1"] * 7 + ["2"]
    assert summarise(result.records).promotions == 1
    registry = _registry(result)
    champion = registry.champion()
    assert champion is not None
    assert champion.version == "2"
    assert champion.tag("shadow") == "promoted"
    move = registry.history.latest("champion")
    assert move is not None
    assert move.actor == "retrainer (shadow evaluation)"
