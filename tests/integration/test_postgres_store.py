"""The same cycle with MLflow's backend store on PostgreSQL, as production runs it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrainer.backtest import run_backtest
from retrainer.scenario import TARGET, ScriptedBatch, write_scenario

pytestmark = pytest.mark.integration

POSTGRES = os.environ.get("RETRAINER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skipped without a server unless CI=true."""
    psycopg = pytest.importorskip("psycopg")
    name = f"retrainer_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES} is required under CI=true: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES} ({str(exc).strip().splitlines()[0]})")
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_backtest_on_a_postgresql_mlflow_store(prefect_api: None, postgres_database: str, tmp_path: Path,
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
