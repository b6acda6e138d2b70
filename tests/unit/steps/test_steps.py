"""The cycle's steps called directly, with an in-memory registry and the work dir's file stores in a
temp dir: what each step decides, without a Prefect run, an MLflow store or a served model."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.config import RetrainerConfig
from retrainer.core.records import BatchRecord
from retrainer.registry import ModelVersionInfo
from retrainer.registry.versions import TAG_PREFIX
from retrainer.state.stores import AcceptedStore
from retrainer.steps.checks import validate
from retrainer.steps.decide import check_staleness
from retrainer.steps.promotion import Promotion, PromotionCheckFailed, after_rollback, verify_promotion
from retrainer.steps.runtime import Runtime
from retrainer.steps.scoring import BatchRead
from retrainer.steps.training import TrainingWindow
from retrainer.validation.suites import SuiteError


@dataclass
class MemoryRegistry:
    """The part of `registry.ModelRegistry` the steps below ask: which version is @champion now."""

    serving: ModelVersionInfo | None = None
    unreachable: str | None = None
    asked: list[str] = field(default_factory=list)
    registered: list[ModelVersionInfo] = field(default_factory=list)

    def versions(self) -> list[ModelVersionInfo]:
        return self.registered

    def champion(self) -> ModelVersionInfo | None:
        self.asked.append("champion")
        if self.unreachable:
            raise ConnectionError(self.unreachable)
        return self.serving


class Model:
    def __init__(self, predictions: list[float]) -> None:
        self.predictions = predictions

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predictions[: len(frame)])


def _runtime(tmp_path: Path, registry: MemoryRegistry | None = None, **sections: Any) -> Runtime:
    config = RetrainerConfig.model_validate({
        "model": {"name": "m", "target": "y", "task": "regression", "features": ["x"], "categorical": []},
        "storage": {"workdir": tmp_path, "suites_dir": tmp_path / "expectations"},
        **sections,
    })
    return Runtime(tmp_path / "retrainer.yaml", config, registry or MemoryRegistry())  # type: ignore[arg-type]


def _version(number: str, trained_until: str | None = None) -> ModelVersionInfo:
    tags = {} if trained_until is None else {TAG_PREFIX + "trained_until": trained_until}
    return ModelVersionInfo(number, f"run-{number}", tags)


def _window(rows: int = 3) -> TrainingWindow:
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "y": np.arange(rows, dtype=float)})
    return TrainingWindow(train=frame, holdout=frame, batches=[4])


# -- validate --------------------------------------------------------------------------------------
def test_a_batch_that_could_not_be_read_is_invalid_with_its_reason(tmp_path: Path) -> None:
    outcome = validate(_runtime(tmp_path), BatchRead(None, error="not a parquet file"), [])
    assert not outcome.valid
    assert outcome.failures == ["unreadable: not a parquet file"]


def test_a_batch_already_used_is_refused_as_a_duplicate_before_the_suite_runs(tmp_path: Path) -> None:
    """No suite exists in the temp dir: the duplicate verdict comes first, and names the earlier batch."""
    past = [BatchRecord(batch="monday", rows=3, valid=True, decision="none", content_hash="abc", batch_index=1)]
    outcome = validate(_runtime(tmp_path), BatchRead(pd.DataFrame({"x": [1.0]}), content_hash="abc"), past)
    assert not outcome.valid
    assert outcome.failures == ["duplicate: same content as batch 'monday'"]
    assert outcome.result == {"duplicate_of": "monday"}


def test_a_batch_like_one_that_was_rejected_is_judged_again(tmp_path: Path) -> None:
    """A rejected batch may come back after a suite fix: it goes on to the suite (none is drafted in the
    temp dir, so the suite's absence is what stops it)."""
    past = [BatchRecord(batch="monday", rows=3, valid=False, decision="reject_batch", content_hash="abc")]
    frame = pd.DataFrame({"x": [1.0], "y": [1.0]})
    with pytest.raises(SuiteError, match="expectation suite not found"):
        validate(_runtime(tmp_path), BatchRead(frame, content_hash="abc"), past)


# -- verify_promotion ------------------------------------------------------------------------------
def test_a_new_champion_that_gives_nan_is_not_kept(tmp_path: Path) -> None:
    challenger = _version("2")
    rt = _runtime(tmp_path, MemoryRegistry(serving=challenger))
    with pytest.raises(PromotionCheckFailed, match="version 2.*unusable predictions"):
        verify_promotion(rt, challenger, Promotion(True), _window(), load=lambda *_: Model([1.0, float("nan"), 2.0]))


def test_a_new_champion_that_does_not_load_is_not_kept(tmp_path: Path) -> None:
    challenger = _version("2")
    rt = _runtime(tmp_path, MemoryRegistry(serving=challenger))

    def fails(*_: Any) -> Any:
        raise OSError("artifact missing\nsecond line")

    with pytest.raises(PromotionCheckFailed, match=r"does not serve: OSError: artifact missing$"):
        verify_promotion(rt, challenger, Promotion(True), _window(), load=fails)


def test_a_new_champion_that_serves_is_kept(tmp_path: Path) -> None:
    challenger = _version("2")
    rt = _runtime(tmp_path, MemoryRegistry(serving=challenger))
    verify_promotion(rt, challenger, Promotion(True), _window(), load=lambda *_: Model([1.0, 2.0, 3.0]))


def test_a_champion_moved_on_since_is_not_this_promotions_to_check(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, MemoryRegistry(serving=_version("3")))
    verify_promotion(rt, _version("2"), Promotion(True), _window(), load=lambda *_: Model([float("nan")] * 3))


def test_a_registry_that_does_not_answer_keeps_the_promotion_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = _runtime(tmp_path, MemoryRegistry(unreachable="connection refused"))
    with caplog.at_level(logging.WARNING, logger="retrainer"):
        verify_promotion(rt, _version("2"), Promotion(True), _window(), load=lambda *_: Model([float("nan")] * 3))
    assert "could not check the new @champion: connection refused" in caplog.text


def test_nothing_is_checked_when_nothing_was_promoted(tmp_path: Path) -> None:
    registry = MemoryRegistry(serving=_version("1"))
    verify_promotion(_runtime(tmp_path, registry), _version("2"), Promotion(False), _window())
    assert registry.asked == []


def test_after_a_rollback_the_record_says_where_champion_stands(tmp_path: Path) -> None:
    promotion, note = after_rollback(_runtime(tmp_path, MemoryRegistry(serving=_version("1"))), _version("2"), "bad")
    assert (promotion.promoted, note) == (False, "bad; @champion restored to version 1")
    promotion, note = after_rollback(_runtime(tmp_path, MemoryRegistry(serving=_version("2"))), _version("2"), "bad")
    assert promotion.promoted
    assert "did NOT restore @champion: it is still version 2" in note


# -- check_staleness -------------------------------------------------------------------------------
def _accept(tmp_path: Path, *indices: int) -> None:
    store = AcceptedStore(tmp_path / "models" / "m" / "accepted")
    for index in indices:
        store.add(index, f"b{index}", pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0]}))


def test_an_old_champion_with_new_labels_asks_for_a_retrain_on_the_newest_window(tmp_path: Path) -> None:
    _accept(tmp_path, 0, 1, 2, 3, 4, 5)
    rt = _runtime(tmp_path, policy={"max_champion_age_days": 30, "min_new_labelled_rows": 0},
                  training={"window_batches": 3})
    check = check_staleness(rt, _version("1", trained_until="2020-01-01T00:00:00+00:00"))
    assert check.reason is not None
    assert check.reason.startswith("champion age ")
    assert (check.batch_index, check.window_start) == (5, 3)


def test_a_challenger_the_gate_refused_against_the_champion_answers_the_staleness_check(tmp_path: Path) -> None:
    """The daily check asked for a retrain, the gate kept the champion: that verified it, so the next days'
    checks do not ask again (no daily retrain storm) until a whole limit has passed since the refusal."""
    _accept(tmp_path, 0, 1, 2)
    now = pd.Timestamp.now(tz="UTC")
    refused = ModelVersionInfo("2", "run-2", {TAG_PREFIX + "gate": "failed", TAG_PREFIX + "gate_champion": "1"},
                               created=(now - pd.Timedelta(days=3)).to_pydatetime())
    other = ModelVersionInfo("3", "run-3", {TAG_PREFIX + "gate": "failed", TAG_PREFIX + "gate_champion": "7"},
                             created=now.to_pydatetime())
    old = _version("1", trained_until="2020-01-01T00:00:00+00:00")
    policy = {"max_champion_age_days": 30, "min_new_labelled_rows": 0}
    rt = _runtime(tmp_path, MemoryRegistry(registered=[refused, other]), policy=policy)
    check = check_staleness(rt, old)
    assert check.reason is None
    assert "unverified 3.0 d (limit 30 d)" in check.summary
    long_ago = ModelVersionInfo("2", "run-2", refused.tags, created=(now - pd.Timedelta(days=40)).to_pydatetime())
    again = check_staleness(_runtime(tmp_path, MemoryRegistry(registered=[long_ago]), policy=policy), old)
    assert again.reason is not None
    assert again.reason.endswith("unverified for 40.0 d > 30 d (staleness check)")


def test_with_nothing_accepted_there_is_nothing_to_train_on(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, policy={"max_champion_age_days": 30, "min_new_labelled_rows": 0})
    check = check_staleness(rt, _version("1", trained_until="2020-01-01T00:00:00+00:00"))
    assert check.reason is None
    assert check.summary.endswith("; no accepted batch to train on")


def test_a_young_champion_is_left_alone(tmp_path: Path) -> None:
    _accept(tmp_path, 0, 1)
    rt = _runtime(tmp_path, policy={"max_champion_age_days": 30, "min_new_labelled_rows": 0})
    check = check_staleness(rt, _version("1", trained_until=pd.Timestamp.now(tz="UTC").isoformat()))
    assert check.reason is None
    assert "age 0.0 d, unverified 0.0 d (limit 30 d)" in check.summary


# -- assemble_window: the gate's holdout -----------------------------------------------------------
def _small_batches(rt: Runtime, rows: int, count: int) -> None:
    """`count` accepted batches of `rows` labelled rows, and a journal: v1 trained on batch 0, v2 made by
    the retrain at batch 1, batches 2.. scored by v2."""
    from retrainer.state.journal import append_record

    store = AcceptedStore(rt.config.storage.accepted_dir("m"))
    rng = np.random.default_rng(5)
    for index in range(count):
        store.add(index, f"w{index:02d}", pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows)}))
        decision = "init" if index == 0 else "retrain" if index == 1 else "none"
        made = {0: "1", 1: "2"}.get(index)
        append_record(BatchRecord(batch=f"w{index:02d}", rows=rows, valid=True, decision=decision, batch_index=index,
                                  champion_version="1" if index <= 1 else "2", new_champion_version=made),
                      rt.journal)


def test_small_batches_give_a_holdout_of_the_minimum_from_fresh_batches_only(tmp_path: Path) -> None:
    """70-row batches: 30 % of the newest is 21 rows; the holdout adds the batch before it, never a batch
    the champion (v2, trained through batch 1) trained on, and the challenger trains on none of it."""
    from retrainer.steps.training import assemble_window

    rt = _runtime(tmp_path)
    _small_batches(rt, 70, 5)
    window = assemble_window(rt, 0, 4, champion_version="2")
    assert len(window.holdout) >= rt.config.promotion.min_holdout_rows
    assert window.holdout_source == "21 of 'w04', 21 of 'w03'"
    assert len(window.train) + len(window.holdout) == 3 * 70  # batches 2-4: the window of 3
    assert not set(window.holdout["x"]) & set(window.train["x"])

    # A window since a change at batch 4: only that batch is drawn from, and it lends up to half.
    assert assemble_window(rt, 4, 4, champion_version="2").holdout_source == "30 of 'w04'"

    # A wide window with a thin share: batches 0 and 1, which v2 trained on, are never held out; the
    # newest batch makes up the rest.
    wide = _runtime(tmp_path / "wide", training={"window_batches": 5, "holdout_fraction": 0.1})
    _small_batches(wide, 70, 5)
    assert assemble_window(wide, 0, 4, champion_version="2").holdout_source == (
        "16 of 'w04', 7 of 'w03', 7 of 'w02'")


def test_large_batches_keep_the_usual_holdout_of_the_newest_batch(tmp_path: Path) -> None:
    from retrainer.steps.training import assemble_window

    rt = _runtime(tmp_path)
    _small_batches(rt, 1000, 4)
    window = assemble_window(rt, 0, 3, champion_version="2")
    assert window.holdout_source == "300 of 'w03'"


# -- one typed view per batch ----------------------------------------------------------------------
class RecordingModel:
    """A regressor that keeps the inputs it was asked to predict."""

    def __init__(self) -> None:
        self.inputs: list[pd.DataFrame] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.inputs.append(frame.copy())
        return np.zeros(len(frame))


def test_the_champion_scores_a_batch_as_the_accepted_store_keeps_it(tmp_path: Path) -> None:
    """A category column delivered as numbers and text mixed (3.0 beside 'a') reaches the champion as the accepted
    copy, which the next challenger trains on, holds it ('3', not '3.0'); the batch is typed once for both."""
    from retrainer.steps.scoring import score_batch
    from retrainer.steps.storage import accept

    model = RecordingModel()
    registry = MemoryRegistry()
    registry.load_model = lambda version: model  # type: ignore[attr-defined]
    rt = _runtime(tmp_path, registry, model={"name": "m", "target": "y", "task": "regression",
                                             "features": ["x", "site"], "categorical": ["site"]})
    batch = BatchRead(pd.DataFrame({"x": [1.0, 2.0, 3.0], "site": [3.0, "a", None], "y": [1.0, 2.0, 3.0]}))
    scoring = score_batch(rt, _version("1"), batch)
    accept(rt, 0, "b1", batch)
    assert model.inputs[0]["site"].tolist() == ["3", "a", "<missing>"]
    stored = AcceptedStore(rt.config.storage.accepted_dir("m")).load(0, 0)
    assert stored["site"].tolist() == ["3", "a", None]
    assert scoring.predictions is not None
    assert len(scoring.predictions) == 3
    assert batch.typed(rt.schema) is batch.typed(rt.schema)
