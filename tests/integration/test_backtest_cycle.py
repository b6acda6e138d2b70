"""A short scripted stream through the real stack: GE, Evidently, scikit-learn, MLflow (SQLite), Prefect."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

pytestmark = pytest.mark.integration

SHORT_SCRIPT = (
    ScriptedBatch("b1", "stable", "init"),
    ScriptedBatch("b2", "stable", "none"),
    ScriptedBatch("b3", "stable", "none"),
    ScriptedBatch("b4", "lost column", "reject_batch", drop_column="vibration_mm_s"),
    ScriptedBatch("b5", "°F", "reject_batch", fahrenheit=True),
    ScriptedBatch("b6", "concept change", "retrain", concept=1),
    ScriptedBatch("b7", "new concept", "none", concept=1),
)


@pytest.fixture(scope="module")
def backtest(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    root = tmp_path_factory.mktemp("short-stream")
    write_scenario(root / "batches", rows=1500, seed=11, script=SHORT_SCRIPT)
    return run_backtest(root / "batches", TARGET, workdir=root / "work", json_out=root / "timeline.json",
                        name="pumps")


def _by_batch(result: BacktestResult) -> dict[str, Any]:
    return {record.batch: record for record in result.records}


def _client(result: BacktestResult) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{result.workdir / 'mlflow.db'}")


def test_every_batch_gets_the_scripted_decision(backtest: BacktestResult) -> None:
    """Each batch of the stream ends with the decision its scripted event calls for."""
    decisions = {name: record.decision for name, record in _by_batch(backtest).items()}
    assert decisions == {"b1": "init", "b2": "none", "b3": "none", "b4": "reject_batch", "b5": "reject_batch",
                         "b6": "retrain", "b7": "none"}


def test_broken_batches_are_quarantined_and_leave_the_champion_alone(backtest: BacktestResult) -> None:
    """The missing-column and °F batches are quarantined with their reason, and v1 stays champion through them."""
    records = _by_batch(backtest)
    assert "missing required column(s): vibration_mm_s" in records["b4"].validation_failures
    assert any("temperature_c" in failure and "mean" in failure for failure in records["b5"].validation_failures)
    quarantine = backtest.workdir / "models" / "pumps" / "quarantine"
    for name in ("b4", "b5"):
        assert (quarantine / f"{name}.csv").read_bytes() == (backtest.workdir.parent / "batches" / f"{name}.csv").read_bytes()
        result = json.loads((quarantine / f"{name}.validation.json").read_text())
        assert result  # the validation result travels with the batch
    assert [records[n].champion_version for n in ("b4", "b5", "b6")] == ["1", "1", "1"]


def test_rejected_batches_never_reach_training(backtest: BacktestResult) -> None:
    """Neither the accepted store nor the challenger's training window holds a rejected batch."""
    accepted = sorted(p.name for p in (backtest.workdir / "models" / "pumps" / "accepted").glob("*.parquet"))
    assert not any("b4" in name or "b5" in name for name in accepted)
    challenger = _client(backtest).get_model_version("pumps", "2")
    window = challenger.tags["retrainer.window_batches"].split(",")
    assert "3" not in window
    assert "4" not in window


def test_concept_change_promotes_a_better_challenger(backtest: BacktestResult) -> None:
    """The concept change retrains; @champion moves to v2, which beat v1 on the same holdout and serves the next batch."""
    records = _by_batch(backtest)
    retrain = records["b6"]
    assert retrain.promoted
    assert retrain.new_champion_version == "2"
    assert retrain.gate is not None
    assert retrain.gate.challenger_metric > retrain.gate.champion_metric
    assert retrain.gate.ci_low > 0
    fired = {signal.rule for signal in retrain.signals if signal.fired}
    assert fired == {"performance"}  # the record says which rule fired, with its value and threshold
    client = _client(backtest)
    assert str(client.get_model_version_by_alias("pumps", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("pumps", "previous-champion").version) == "1"
    assert "challenger" not in client.get_registered_model("pumps").aliases
    assert client.get_model_version("pumps", "2").tags["retrainer.holdout_digest"]
    after = records["b7"]
    assert after.champion_version == "2"
    assert after.metric is not None
    assert retrain.metric is not None
    assert after.metric > retrain.metric + 0.2
    # What a person reads of it in MLflow: the version's description leads with the gate's verdict; the cycle
    # run's description says what happened and links the version.
    assert client.get_model_version("pumps", "2").description.startswith("gate PASSED on ")
    note = client.get_run(retrain.mlflow_run_id).data.tags["mlflow.note.content"]
    assert note.startswith("pumps: batch b6 -> retrain (")
    assert "challenger v2 promoted to @champion (gate passed: accuracy " in note
    assert "[version 2](#/models/pumps/versions/2)" in note
    # The retrain's Evidently page says which batch and which version it is about, and compares the model's
    # predictions and the labels too.
    report = next(backtest.workdir.glob("models/pumps/reports/*__b6/drift_report.html")).read_text()
    assert "Drift of batch &#x27;b6&#x27; against the training data of &#x27;pumps&#x27; version 1" in report
    assert "prediction (model output)" in report
    assert "target (labels)" in report


def test_stable_stretch_does_not_retrain(backtest: BacktestResult) -> None:
    """Stable batches show no dataset drift and keep the first champion."""
    records = _by_batch(backtest)
    for name in ("b2", "b3"):
        assert records[name].decision == "none"
        assert records[name].drift_share is not None
        assert records[name].drift_share < 0.3
        assert records[name].champion_version == "1"


def test_one_mlflow_run_per_cycle_with_its_decision_record(backtest: BacktestResult) -> None:
    """The cycles experiment holds one finished run per batch, each with its decision record artifact."""
    client = _client(backtest)
    experiment = client.get_experiment_by_name("pumps-cycles")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == len(SHORT_SCRIPT)
    by_run = {record.mlflow_run_id: record for record in backtest.records}
    for run in runs:
        record = by_run[run.info.run_id]
        path = client.download_artifacts(run.info.run_id, "decision_record.json")
        logged = json.loads(Path(path).read_text())
        assert logged["batch"] == record.batch
        assert logged["decision"] == record.decision
        assert run.data.tags["retrainer.decision"] == record.decision


def test_timeline_json_follows_the_design(backtest: BacktestResult) -> None:
    """The --json timeline holds one DESIGN.md record per batch and the summary."""
    document = json.loads((backtest.workdir.parent / "timeline.json").read_text())
    keys = {"batch", "rows", "valid", "validation_failures", "drift_share", "dataset_drift", "drifted_features",
            "prediction_drift", "champion_version", "metric_name", "metric", "decision", "reasons", "promoted",
            "new_champion_version"}
    assert all(keys <= set(batch) for batch in document["batches"])
    assert document["summary"]["retrains"] == 1
    assert document["summary"]["promotions"] == 1
    assert document["summary"]["rejected_batches"] == ["b4", "b5"]
    assert 0.5 < document["summary"]["mean_metric"] < 1.0


def test_a_failed_retrain_is_recorded_and_the_stream_goes_on(prefect_api: str, tmp_path: Path) -> None:
    """A retrain that cannot train (one class since the change) is recorded with its reason; v1 stays champion."""
    import pandas as pd

    write_scenario(tmp_path / "batches", rows=800, seed=2, script=SHORT_SCRIPT[:3])
    one_class = pd.read_csv(tmp_path / "batches" / "b3.csv")
    one_class[TARGET] = 1
    one_class.to_csv(tmp_path / "batches" / "b3.csv", index=False)
    write_scenario(tmp_path / "tail", rows=800, seed=3, script=(ScriptedBatch("b4", "stable", "none"),))
    (tmp_path / "tail" / "b4.csv").rename(tmp_path / "batches" / "b4.csv")
    result = run_backtest(tmp_path / "batches", TARGET, workdir=tmp_path / "work", name="pumps")
    records = _by_batch(result)
    assert records["b3"].decision == "retrain"
    assert not records["b3"].promoted
    assert records["b3"].retrain_error is not None
    assert "single class" in records["b3"].retrain_error
    assert records["b4"].champion_version == "1"
    assert records["b4"].batch_index == 3
    assert records["b4"].decision == "none"


# --- the policy simulator (`backtest --baselines`, `--sweep`) on the same replay ---------------

TRUTH = {"change_points": [{"batch": "b6", "kind": "abrupt"}], "stable": [["b2", "b5"]]}


@pytest.fixture(scope="module")
def comparison(backtest: BacktestResult) -> Any:
    from retrainer.replay.baselines import default_baselines
    from retrainer.replay.comparison import parse_ground_truth
    from retrainer.replay.sweep import compare_policies

    return compare_policies(backtest, default_baselines(2), backtest.workdir / "compare", parse_ground_truth(TRUTH))


def test_baselines_replay_the_same_stream(comparison: Any) -> None:
    """The configured policy retrains once, on the change, never on rejected data; every-batch retrains on
    every batch, broken ones included; never keeps the first model and misses the change."""
    ours, never = comparison.summary("retrainer"), comparison.summary("never")
    every_batch, every_2 = comparison.summary("every-batch"), comparison.summary("every-2")
    assert (ours.retrains, ours.retrains_on_rejected, ours.false_retrains) == (1, 0, 0)
    assert ours.detection_delays == {"b6": 0}
    assert never.retrains == 0
    assert never.detection_delays == {"b6": None}
    assert every_batch.retrains == 6
    assert every_batch.retrains_on_rejected >= 2
    assert every_2.retrains == 3
    # All judged on the same accepted, labelled batches; the retrain after the change pays off.
    assert ours.scored_batches == never.scored_batches == every_batch.scored_batches == 4
    assert ours.mean_metric > never.mean_metric + 0.05
    document = json.loads(comparison.files["json"].read_text())
    assert [p["policy"] for p in document["policies"]] == ["retrainer", "never", "every-2", "every-batch",
                                                           "drift-trigger"]
    assert comparison.files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_policy_page_renders_in_headless_chromium(comparison: Any) -> None:
    """The HTML page, opened in a real headless Chromium with no network, draws the plot: plotly's SVG with
    one legend entry per policy (the page holds only JavaScript until a browser runs it)."""
    import os
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    page = comparison.files["html"]
    assert 'class="main-svg"' not in page.read_text()
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert 'class="main-svg"' in dom
    legend = set(re.findall(r'class="legendtext"[^>]*data-unformatted="([^"]+)"', dom))
    assert {"retrainer", "never", "every-2", "every-batch", "drift-trigger"} <= legend
    assert dom.count('class="trace scatter') >= 5


def test_sweep_shows_the_frontier(backtest: BacktestResult) -> None:
    """Two thresholds: a tolerant one never retrains and serves a stale model; the configured one retrains on
    the change and is better. Both are on the frontier (neither beats the other on both counts)."""
    from retrainer.replay.sweep import run_sweep

    points = run_sweep(backtest, backtest.initial_paths[0].parent, {"max_relative_drop": (0.05, 0.9)},
                       backtest.workdir / "sweep")
    tight, loose = points
    assert tight.configured
    assert not loose.configured
    assert (tight.summary.retrains, loose.summary.retrains) == (1, 0)
    assert tight.summary.mean_metric > loose.summary.mean_metric
    assert tight.on_frontier
    assert loose.on_frontier
    saved = json.loads((backtest.workdir / "sweep" / "sweep.json").read_text())
    assert [p["retrains"] for p in saved["points"]] == [1, 0]
