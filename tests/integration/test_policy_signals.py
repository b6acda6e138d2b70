"""The retraining policy's signals through real backtests: hysteresis, cool-down, concept drift,
staleness and estimated performance, each read from the decision records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.core.decision import SignalCheck
from retrainer.core.records import BatchRecord
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch

pytestmark = pytest.mark.integration

ROWS = 1200
STABLE = ScriptedBatch("stable", "stable", "none")
CONCEPT = ScriptedBatch("concept", "concept change", "retrain", concept=1)


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """A stable day with its inputs moved, the label rule unchanged.

    Four numeric features move by about one reference standard deviation and the site mix
    changes: five of the ten features drift (share 0.5 > 0.3), yet every mean stays well inside
    the drafted suite's 5-sd band for column means, so the batch is drift, not a rejection. Only features the
    concept-0 label does not depend on are moved, so the labels stay true to the features and
    the champion's accuracy holds: the shift alone is what the policy sees.
    """
    out = frame.copy()
    out["rpm"] = (out["rpm"] + 200).round(0)
    out["flow_m3h"] = (out["flow_m3h"] + 15).round(1)
    out["pressure_bar"] = (out["pressure_bar"] + 0.6).round(3)
    out["humidity_pct"] = (out["humidity_pct"] + 10).clip(2, 99).round(1)
    rng = np.random.default_rng(len(out))
    out["site"] = rng.choice(["north", "south", "east", "west"], size=len(out), p=[0.55, 0.35, 0.05, 0.05])
    return out


def write_stream(folder: Path, batches: Sequence[tuple[str, str, int]], seed: int) -> None:
    """CSV files named in stream order; each batch is (name, kind, day), kind stable/shifted/concept."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, kind, day in batches:
        frame = make_batch(CONCEPT if kind == "concept" else STABLE, day, ROWS, rng)
        if kind == "shifted":
            frame = shifted(frame)
        frame.to_csv(folder / f"{name}.csv", index=False)


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET}, **sections}), encoding="utf-8")
    return path


def challenger_tags(result: BacktestResult, record: BatchRecord) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{result.workdir / 'mlflow.db'}")
    return dict(client.get_model_version("pumps", str(record.challenger_version)).tags)


def by_batch(result: BacktestResult) -> dict[str, BatchRecord]:
    return {record.batch: record for record in result.records}


def signal(record: BatchRecord, rule: str) -> SignalCheck:
    matches = [s for s in record.signals if s.rule == rule]
    assert len(matches) == 1, f"{record.batch}: expected one '{rule}' signal in {record.signals}"
    return matches[0]


def fired_triggers(record: BatchRecord) -> set[str]:
    """Rules that fired, guards (validation, cool-down, minimum labels) left out."""
    guards = {"validation", "cool-down", "minimum labels"}
    return {s.rule for s in record.signals if s.fired and s.rule not in guards}


# b1 init; a one-batch blip (b3); a shift that persists from b5 on. No challenger can pass a
# gate that asks for +0.5 accuracy, so v1 stays champion and the shift persists against its
# reference: after the retrain at b6 the shift is seen again and, once it has persisted again
# (b8), the cool-down holds the second retrain back.
POLICY_STREAM = (
    ("b1", "stable", 0), ("b2", "stable", 1), ("b3", "shifted", 2), ("b4", "stable", 3),
    ("b5", "shifted", 4), ("b6", "shifted", 5), ("b7", "shifted", 6), ("b8", "shifted", 7),
)
POLICY = {"drift_persistence_batches": 2, "cooldown_batches": 2}


@pytest.fixture(scope="module")
def shift_stream(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    root = tmp_path_factory.mktemp("shift-stream")
    write_stream(root / "batches", POLICY_STREAM, seed=21)
    config = write_config(root / "config" / "retrainer.yaml", policy=POLICY, promotion={"margin": 0.5})
    return run_backtest(root / "batches", TARGET, workdir=root / "work", config_path=config, name="pumps")


def test_shift_stream_decisions(shift_stream: BacktestResult) -> None:
    """Only a persisted shift retrains: a blip and a fresh shift wait; a renewed one is held by the cool-down."""
    decisions = {name: record.decision for name, record in by_batch(shift_stream).items()}
    assert decisions == {"b1": "init", "b2": "none", "b3": "none", "b4": "none", "b5": "none", "b6": "retrain",
                         "b7": "none", "b8": "none"}


def test_one_batch_blip_waits_for_persistence(shift_stream: BacktestResult) -> None:
    """A single shifted batch is reported as dataset drift waiting for persistence, and does not retrain."""
    records = by_batch(shift_stream)
    blip = records["b3"]
    assert blip.decision == "none"
    assert blip.dataset_drift is True
    assert blip.shifted is True
    assert blip.drift_share is not None
    assert blip.drift_share > 0.3
    assert any("waiting for 2 batches" in reason for reason in blip.reasons), blip.reasons
    drift = signal(blip, "drift")
    assert drift.signal == "drift_share"
    assert drift.fired is True
    assert drift.value == pytest.approx(blip.drift_share)
    assert drift.threshold == pytest.approx(0.3)
    persistence = signal(blip, "drift persistence")
    assert (persistence.value, persistence.threshold, persistence.fired) == (1.0, 2.0, False)
    # The stable batch after the blip breaks the run: the next shift starts counting from one.
    stable = records["b4"]
    assert stable.decision == "none"
    assert stable.dataset_drift is False
    assert not any("waiting" in reason for reason in stable.reasons), stable.reasons
    assert records["b5"].decision == "none"
    assert records["b5"].dataset_drift is True
    assert signal(records["b5"], "drift persistence").value == 1.0


def test_persistent_shift_retrains_from_its_first_batch(shift_stream: BacktestResult) -> None:
    """A shift seen two batches in a row retrains, on a window starting at the shift's first batch."""
    records = by_batch(shift_stream)
    retrain = records["b6"]
    assert retrain.decision == "retrain"
    assert any("for 2 batches" in reason and "drift_share" in reason  # noqa: PT018 (one reason holds both)
               for reason in retrain.reasons), retrain.reasons
    assert retrain.window_start == records["b5"].batch_index
    fired = fired_triggers(retrain)
    assert {"drift", "drift persistence"} <= fired
    assert not fired & {"performance", "staleness", "follow-up"}
    drift = signal(retrain, "drift")
    assert drift.value == pytest.approx(retrain.drift_share)
    assert drift.value > drift.threshold == 0.3
    persistence = signal(retrain, "drift persistence")
    assert persistence.signal == "shifted_batches_in_a_row"
    assert (persistence.value, persistence.threshold, persistence.fired) == (2.0, 2.0, True)
    # The inputs moved, the label rule did not: the challenger trained on the full window (the
    # stable b4 too) scored at least as well on the holdout as the one trained since the shift,
    # and went to the gate.
    tags = challenger_tags(shift_stream, retrain)
    first = records["b4"].batch_index
    assert tags["retrainer.window_batches"] == f"{first},{first + 1},{first + 2}", tags
    # The window by its batches' names, as a person knows them.
    assert tags["retrainer.window_choice"].startswith("window 'b4'..'b6' chosen"), tags
    # The gate asks for +0.5 accuracy: the challenger is registered but v1 stays champion.
    assert retrain.challenger_version == "2"
    assert not retrain.promoted
    assert records["b7"].champion_version == "1"


def test_retrain_is_followed_by_a_cool_down(shift_stream: BacktestResult) -> None:
    """A shift that persists again right after a retrain is held back by the cool-down, with its reason."""
    records = by_batch(shift_stream)
    assert records["b7"].decision == "none"
    assert records["b7"].dataset_drift is True
    held = records["b8"]
    assert held.decision == "none"
    assert held.dataset_drift is True
    assert any("for 2 batches" in reason for reason in held.reasons), held.reasons
    assert any("cool-down" in reason for reason in held.reasons), held.reasons
    cooldown = signal(held, "cool-down")
    assert cooldown.signal == "batches_since_retrain"
    assert (cooldown.value, cooldown.threshold, cooldown.fired) == (2.0, 2.0, True)
    assert held.challenger_version is None
    assert held.window_start is None


def test_estimated_performance_tracks_realized_on_stable_batches(shift_stream: BacktestResult) -> None:
    """On stable labelled batches the champion's estimated accuracy is within 0.05 of the realized one."""
    records = by_batch(shift_stream)
    for name in ("b2", "b4"):
        record = records[name]
        assert record.decision == "none"
        assert record.metric is not None
        assert record.metric > 0.8  # the champion is good on its own regime
        assert record.estimated_metric is not None
        assert record.estimated_metric_std is not None
        assert abs(record.estimated_metric - record.metric) < 0.05, (name, record.estimated_metric, record.metric)
        assert record.estimated_metric_std > 0


def test_concept_drift_without_feature_drift_retrains(prefect_api: str, tmp_path: Path) -> None:
    """A change in what the labels mean, with unchanged inputs, retrains on the performance rule alone."""
    write_stream(tmp_path / "batches", [("b1", "stable", 0), ("b2", "stable", 1), ("b3", "concept", 2)], seed=5)
    config = write_config(tmp_path / "config" / "retrainer.yaml")
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", config_path=config,
                          name="pumps")
    records = by_batch(result)
    assert [records[n].decision for n in ("b1", "b2", "b3")] == ["init", "none", "retrain"]
    retrain = records["b3"]
    assert retrain.drift_share is not None
    assert retrain.drift_share < 0.3
    assert retrain.dataset_drift is False
    assert fired_triggers(retrain) == {"performance"}
    performance = signal(retrain, "performance")
    assert performance.signal == "relative_metric_drop"
    assert performance.value > performance.threshold == pytest.approx(0.05)
    assert any(reason.startswith("accuracy ") for reason in retrain.reasons), retrain.reasons
    assert retrain.window_start == retrain.batch_index  # the change's first batch: this one
    # A new concept: the challenger trained on the full window (the old concept too) scored worse on
    # the holdout than the one trained on this batch alone, which went to the gate.
    tags = challenger_tags(result, retrain)
    assert tags["retrainer.window_batches"] == str(retrain.batch_index)
    assert tags["retrainer.window_choice"].startswith("window 'b3' chosen"), tags
    assert retrain.metric is not None
    assert records["b2"].metric is not None
    assert retrain.metric < records["b2"].metric - 0.1


def test_an_old_champion_verified_by_labels_is_kept_and_the_hard_age_limit_retrains_it(prefect_api: str,
                                                                                        tmp_path: Path) -> None:
    """A stationary batch 45 days after the champion's training, with labels: its metric holds, so the
    champion was verified on it and the staleness rule is quiet (0 unverified days); the hard limit
    (`retrain_every_days`, off by default) retrains it anyway, naming the age."""
    write_stream(tmp_path / "batches", [("b1", "stable", 0), ("b2", "stable", 1), ("b3", "stable", 45)], seed=9)
    config = write_config(tmp_path / "config" / "retrainer.yaml",
                          policy={"max_champion_age_days": 30, "retrain_every_days": 30})
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", config_path=config,
                          name="pumps")
    records = by_batch(result)
    young, old = records["b2"], records["b3"]
    assert young.decision == "none"
    assert young.champion_age_days is not None
    assert young.champion_age_days < 2
    assert old.decision == "retrain"
    assert old.reasons == [f"champion age {old.champion_age_days:.1f} d > the hard limit of 30 d "
                           "(policy.retrain_every_days)"], old.reasons
    assert old.champion_age_days is not None
    assert old.champion_age_days > 30
    assert fired_triggers(old) == {"age limit"}
    staleness = signal(old, "staleness")
    assert (staleness.signal, staleness.value, staleness.threshold, staleness.fired) == (
        "unverified_days", 0.0, 30, False)
    assert signal(old, "age limit").value == pytest.approx(old.champion_age_days)
