"""The same cycle with MLflow's backend store on PostgreSQL, as production runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

pytestmark = pytest.mark.integration

def test_backtest_on_a_postgresql_mlflow_store(prefect_api: str, postgres_database: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With the MLflow store on PostgreSQL (set from the environment), a concept change registers v2 and moves @champion there."""
    from mlflow import MlflowClient

    script = (
        ScriptedBatch("p1", "stable", "init"),
        ScriptedBatch("p2", "stable", "none"),
        ScriptedBatch("p3", "concept change", "retrain", concept=1),
    )
    write_scenario(tmp_path / "batches", rows=1200, seed=5, script=script)
    config = tmp_path / "retrainer.yaml"
    config.write_text(f"model:\n  name: pg-pumps\n  target: {TARGET}\n")
    # A replay keeps its own store unless the environment names one explicitly.
    monkeypatch.setenv("RETRAINER_MLFLOW__TRACKING_URI", postgres_database)
    result = run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work")
    assert [r.decision for r in result.records] == ["init", "none", "retrain"]
    assert result.records[-1].promoted
    client = MlflowClient(tracking_uri=postgres_database)
    assert str(client.get_model_version_by_alias("pg-pumps", "champion").version) == "2"
    assert not (tmp_path / "work" / "mlflow.db").exists()
