"""The gate on real models and a real registry: a challenger better on average but worse on a slice
is refused; a much better one everywhere is promoted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.core.records import BatchRecord, GateCheckRecord
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch

pytestmark = pytest.mark.integration

ROWS = 1500
FEATURES = ["machine_type", "site", "shift", "temperature_c", "vibration_mm_s", "pressure_bar", "humidity_pct",
            "rpm", "load_pct", "flow_m3h"]
OLD, NEW = ScriptedBatch("old", "stable", "none"), ScriptedBatch("new", "concept change", "retrain", concept=1)


def _batch(day: int, seed: int, west_keeps_old_concept: bool, concept: int) -> pd.DataFrame:
    """One day; `region` is not a feature. After the change, the west region may keep the old concept."""
    # The same generator state gives the same readings under either concept: only labels differ.
    old = make_batch(OLD, day, ROWS, np.random.default_rng(seed))
    frame = make_batch(NEW if concept else OLD, day, ROWS, np.random.default_rng(seed))
    region = np.random.default_rng(seed + 1000).choice(["north", "south", "east", "west"], size=ROWS,
                                                       p=[0.3, 0.25, 0.25, 0.2])
    frame.insert(2, "region", region)
    if west_keeps_old_concept:
        west = region == "west"
        frame.loc[west, TARGET] = old.loc[west, TARGET]
    return frame


def _replay(root: Path, west_keeps_old_concept: bool, fairness: dict[str, object] | None = None) -> dict[str, BatchRecord]:
    batches = root / "batches"
    batches.mkdir(parents=True)
    for index, concept in enumerate([0, 0, 1]):
        _batch(index, 40 + index, west_keeps_old_concept, concept).to_csv(batches / f"b{index + 1}.csv", index=False)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name": "pumps", "target": TARGET, "features": FEATURES,
                  "categorical": ["machine_type", "site", "shift"]},
        "promotion": {"slices": ["region"], "min_slice_rows": 30, "slice_tolerance": 0.02,
                      **({"fairness": fairness} if fairness else {})},
    }), encoding="utf-8")
    result: BacktestResult = run_backtest(batches, TARGET, config_path=config, workdir=root / "work", name="pumps")
    return {record.batch: record for record in result.records}


def _check(record: BatchRecord, prefix: str) -> GateCheckRecord:
    assert record.gate is not None
    return next(c for c in record.gate.checks if str(c.name).startswith(prefix))


def test_better_on_average_but_worse_on_a_slice_is_refused(prefect_api: str, tmp_path: Path) -> None:
    """Where the west region kept the old concept, the new challenger wins on average, loses in the west: refused."""
    records = _replay(tmp_path, west_keeps_old_concept=True)
    retrain = records["b3"]
    assert retrain.decision == "retrain"
    assert retrain.gate is not None
    assert retrain.gate.improvement > 0.1  # clearly better on average ...
    slices = _check(retrain, "no regression on slices of region")
    assert slices.passed is False
    assert "region=west" in str(slices.detail)
    assert not retrain.promoted
    assert retrain.new_champion_version is None


def test_much_better_everywhere_is_promoted(prefect_api: str, tmp_path: Path) -> None:
    """When every region changed, the challenger is better on each slice and beats the baseline: promoted. With a
    fairness check configured on the region (generous here), the record shows each region's selection rate for
    both models."""
    records = _replay(tmp_path, west_keeps_old_concept=False,
                      fairness={"groups": ["region"], "metric": "selection_rate", "max_gap_increase": 1.0})
    retrain = records["b3"]
    assert retrain.promoted
    assert retrain.new_champion_version == "2"
    assert _check(retrain, "no regression on slices of region").passed is True
    assert _check(retrain, "beats the baseline").passed is True
    fairness = _check(retrain, "fairness: selection_rate gap across region")
    assert fairness.passed is True
    assert all(region in str(fairness.detail) for region in ("north", "south", "east", "west"))
    assert _check(retrain, "prediction latency").passed is True
    assert _check(retrain, "serialized size").passed is True
