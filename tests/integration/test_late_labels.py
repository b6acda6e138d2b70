"""Labels that arrive after their batch, through the real flows: the batch is estimated first,
measured once its labels are joined, and a measured drop then retrains."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.config import load_config
from retrainer.core.records import BatchRecord
from retrainer.core.schema import resolve_model_settings
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch
from retrainer.state.journal import read_journal
from retrainer.state.stores import save_model_settings

pytestmark = pytest.mark.integration

ROWS = 1200
STABLE = ScriptedBatch("stable", "stable", "none")
CONCEPT = ScriptedBatch("concept", "concept change", "retrain", concept=1)
UNKNOWN_ID = "20991231-99999"
RETRAINER = str(Path(sys.executable).with_name("retrainer"))


@dataclass
class LateLabels:
    config: Path
    workdir: Path
    init: list[BatchRecord]
    unlabelled: BatchRecord  # b2's record as its cycle wrote it, before the labels came
    truth: pd.DataFrame  # b2's reading_id and failure, kept back from the batch
    joined: dict[str, Any]  # what join_late_labels returned
    after_labels: list[BatchRecord]  # the journal right after the join
    next_batch: BatchRecord  # b3, unlabelled, decided with b2's late labels known


@pytest.fixture(scope="module")
def late(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> LateLabels:
    from retrainer.pipeline.flows import initialise_champion, join_late_labels, monitor_batch

    root = tmp_path_factory.mktemp("late-labels")
    config = root / "retrainer.yaml"  # storage.workdir defaults to the config's folder
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET}}), encoding="utf-8")
    landing = root / "landing"
    landing.mkdir()
    rng = np.random.default_rng(17)

    first = make_batch(STABLE, 0, ROWS, rng)
    first.to_csv(landing / "b1.csv", index=False)
    # What `retrainer init` does before its flow: infer the columns and save them for the cycles.
    loaded = load_config(config)
    save_model_settings(loaded, resolve_model_settings(first, loaded.model))
    init = [BatchRecord.model_validate(r) for r in initialise_champion(str(config), [str(landing / "b1.csv")])]

    # The maintenance change lands on a day whose failures are not known yet.
    second = make_batch(CONCEPT, 1, ROWS, rng)
    truth = second[["reading_id", TARGET]].copy()
    second.drop(columns=[TARGET]).to_csv(landing / "b2.csv", index=False)
    unlabelled = BatchRecord.model_validate(monitor_batch(str(config), str(landing / "b2.csv")))

    labels = pd.concat([truth, pd.DataFrame({"reading_id": [UNKNOWN_ID], TARGET: [1]})], ignore_index=True)
    labels.to_csv(landing / "labels-b2.csv", index=False)
    joined = join_late_labels(str(config), str(landing / "labels-b2.csv"))
    after_labels = read_journal(root / "models" / "pumps" / "timeline.jsonl")

    third = make_batch(CONCEPT, 2, ROWS, rng)
    third.drop(columns=[TARGET]).to_csv(landing / "b3.csv", index=False)
    next_batch = BatchRecord.model_validate(monitor_batch(str(config), str(landing / "b3.csv")))
    return LateLabels(config, root, init, unlabelled, truth, joined, after_labels, next_batch)


def _record(records: list[BatchRecord], name: str) -> BatchRecord:
    matches = [r for r in records if r.batch == name]
    assert len(matches) == 1, [r.batch for r in records]
    return matches[0]


def test_unlabelled_batch_is_estimated_not_measured(late: LateLabels) -> None:
    """A batch without its target column is accepted with an estimated metric and no measured one."""
    record = late.unlabelled
    assert record.valid
    assert record.decision == "none"
    assert record.metric is None
    assert record.metrics == {}
    assert record.labelled_rows == 0
    assert record.estimated_metric is not None
    assert 0.5 < record.estimated_metric <= 1.0
    assert record.late_labels_at is None


def test_join_reports_rows_per_batch_and_unknown_ids(late: LateLabels) -> None:
    """Joining a labels file says how many rows of which batch it labelled, and how many ids it did not know."""
    assert late.joined["batches"] == {"b2": ROWS}
    assert late.joined["unmatched"] == 1
    assert late.joined["already_labelled"] == 0
    assert late.joined["unusable"] == 0


def test_late_labels_rescore_the_batch_record(late: LateLabels) -> None:
    """After the join, the batch's journal record holds the served champion's measured metrics on its late labels."""
    record = _record(late.after_labels, "b2")
    assert record.late_labels_at is not None
    assert record.labelled_rows == ROWS
    assert {"accuracy", "f1", "roc_auc"} <= set(record.metrics)
    assert record.metric == pytest.approx(record.metrics["accuracy"])
    # The concept changed: the champion trained on the old regime is far below its ~0.9.
    assert record.metric is not None
    assert record.metric < 0.75
    # Everything else the cycle recorded stays as it was.
    assert record.decision == late.unlabelled.decision
    assert record.batch_index == late.unlabelled.batch_index
    assert record.estimated_metric == late.unlabelled.estimated_metric
    assert record.mlflow_run_id == late.unlabelled.mlflow_run_id


def test_accepted_batch_now_holds_the_labels(late: LateLabels) -> None:
    """The accepted copy of the batch, which training windows read, carries the late labels row by row."""
    accepted = sorted((late.workdir / "models" / "pumps" / "accepted").glob("*__b2.parquet"))
    assert len(accepted) == 1
    frame = pd.read_parquet(accepted[0])
    assert len(frame) == ROWS
    assert frame[TARGET].notna().all()
    merged = frame[["reading_id", TARGET]].astype({"reading_id": str}).merge(
        late.truth.astype({"reading_id": str}), on="reading_id", suffixes=("", "_truth"))
    assert len(merged) == ROWS
    assert (merged[TARGET].astype(int) == merged[f"{TARGET}_truth"].astype(int)).all()


def test_unknown_ids_are_kept_for_later(late: LateLabels) -> None:
    """A label whose id matches no accepted row is kept in a file under labels/, not dropped."""
    kept = list((late.workdir / "models" / "pumps" / "labels").iterdir())
    assert len(kept) == 1
    assert str(kept[0]) == late.joined["kept_as"]
    frame = pd.read_csv(kept[0], dtype={"reading_id": str})
    assert frame["reading_id"].tolist() == [UNKNOWN_ID]
    assert frame[TARGET].tolist() == [1]


def test_late_metric_reaches_the_cycle_run_in_mlflow(late: LateLabels) -> None:
    """The batch's MLflow cycle run gets the late metric and is tagged as late-labelled."""
    from mlflow import MlflowClient

    record = _record(late.after_labels, "b2")
    assert record.mlflow_run_id is not None
    client = MlflowClient(tracking_uri=f"sqlite:///{late.workdir / 'mlflow.db'}")
    history = sorted(client.get_metric_history(record.mlflow_run_id, "metric"), key=lambda m: (m.step, m.timestamp))
    assert history, "no 'metric' logged on the cycle run"
    assert history[-1].value == pytest.approx(record.metric)
    accuracy = client.get_metric_history(record.mlflow_run_id, "metric_accuracy")
    assert accuracy
    assert accuracy[-1].value == pytest.approx(record.metrics["accuracy"])
    run = client.get_run(record.mlflow_run_id)
    assert run.data.tags["retrainer.late_labels"] == "true"
    assert run.data.metrics["labelled_rows"] == ROWS


def test_measured_drop_on_late_labels_retrains_from_that_batch(late: LateLabels) -> None:
    """The next unlabelled batch retrains on the drop the late labels showed, its window starting at that batch."""
    labelled = _record(late.after_labels, "b2")
    record = late.next_batch
    assert record.metric is None  # this batch's own labels are not in yet
    assert record.decision == "retrain"
    assert any("late labels of batch 'b2'" in reason for reason in record.reasons), record.reasons
    assert record.window_start == labelled.batch_index
    performance = next(s for s in record.signals if s.rule == "performance")
    assert performance.fired is True
    assert performance.value > performance.threshold
    assert record.challenger_version is not None
    assert record.retrain_error is None


def test_labels_file_without_id_column_is_a_one_line_error(late: LateLabels, tmp_path: Path) -> None:
    """`retrainer labels` with a file lacking the id column exits 2 with one line naming the missing column."""
    from prefect.settings import PREFECT_API_URL

    labels = tmp_path / "labels-no-id.csv"
    late.truth[[TARGET]].to_csv(labels, index=False)
    journal = (late.workdir / "models" / "pumps" / "timeline.jsonl").read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    api = PREFECT_API_URL.value()
    if api:  # the harness's API: the command needs no server of its own
        env["PREFECT_API_URL"] = api
    done = subprocess.run([RETRAINER, "labels", "--config", str(late.config), str(labels)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("retrainer: error: ")
    assert "missing column(s) reading_id" in lines[0]
    assert "Traceback" not in done.stdout
    # Nothing was changed by the refused file.
    assert (late.workdir / "models" / "pumps" / "timeline.jsonl").read_bytes() == journal
