"""One promotion at a time: the promotion lock (file or PostgreSQL advisory) and the compare-and-set,
with real processes racing and a holder killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from retrainer.config import RetrainerConfig, load_config
from retrainer.pipeline.concurrency import promotion_lock
from retrainer.state.locks import LockTimeout

from .conftest import start_together

pytestmark = pytest.mark.integration

def _config(tmp_path: Path, tracking_uri: str | None = None, name: str = "pumps") -> Path:
    data: dict[str, object] = {"model": {"name": name, "target": "failure"}}
    if tracking_uri:
        data["mlflow"] = {"tracking_uri": tracking_uri}
    path = tmp_path / "retrainer.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


HOLDER = textwrap.dedent("""
    import sys, time
    from retrainer.config import load_config
    from retrainer.pipeline.concurrency import promotion_lock
    with promotion_lock(load_config(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
""")


def _hold_in_subprocess(config_path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(config_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def _check_exclusive_and_released_on_kill(config: RetrainerConfig, config_path: Path) -> None:
    holder = _hold_in_subprocess(config_path)
    try:
        with pytest.raises(LockTimeout), promotion_lock(config, timeout_seconds=0.5):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    started = time.monotonic()
    with promotion_lock(config, timeout_seconds=10):
        pass
    assert time.monotonic() - started < 5  # the dead holder's lock went with it


def test_file_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    """With a SQLite store, a second promotion waits for the first; a SIGKILLed holder leaves no stale lock."""
    path = _config(tmp_path)
    _check_exclusive_and_released_on_kill(load_config(path), path)


def test_postgres_advisory_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path, postgres_database: str) -> None:
    """With a PostgreSQL store the lock is an advisory lock in that database, released when its holder dies."""
    path = _config(tmp_path, postgres_database)
    _check_exclusive_and_released_on_kill(load_config(path), path)


RACER = textwrap.dedent("""
    import json, sys
    from retrainer.config import load_config
    from retrainer.pipeline.concurrency import promotion_lock
    from retrainer.registry import ModelRegistry, PromotionConflict, connect
    config = load_config(sys.argv[1])
    registry = ModelRegistry(connect(config), config)
    sys.stdin.readline()  # start together
    try:
        with promotion_lock(config):
            registry.promote(sys.argv[2], expected_champion="1", actor="racer", reason="race")
        print(json.dumps({"version": sys.argv[2], "promoted": True}))
    except PromotionConflict:
        print(json.dumps({"version": sys.argv[2], "promoted": False}))
""")


def _race(config_path: Path, racers: int = 8) -> list[dict[str, object]]:
    """Register v1 as champion and `racers` challengers, then let one process per challenger promote at once."""
    import json

    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.dummy import DummyClassifier

    from retrainer.registry import ModelRegistry, connect
    from retrainer.registry.versions import REGISTERED_BY

    config = load_config(config_path)
    registry = ModelRegistry(connect(config), config)
    registry.ensure_registered_model()
    client = registry.client
    # One small real skops model behind every version: promote loads nothing, but refuses a version
    # that is not a model it would load (registry.trust).
    with mlflow.start_run(experiment_id=client.get_experiment_by_name("pumps-training").experiment_id) as run:
        logged = mlflow.sklearn.log_model(DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1]), name="model",
                                          serialization_format="skops", pip_requirements=["scikit-learn"])
    for _ in range(racers + 1):
        client.create_model_version("pumps", logged.model_uri, run_id=run.info.run_id,
                                    tags={REGISTERED_BY: "retrainer"}, model_id=logged.model_id)
    registry.move_alias("champion", "1", "test", "setup")
    lines = start_together([[sys.executable, "-c", RACER, str(config_path), str(version)]
                            for version in range(2, racers + 2)], env=None, warm_up_seconds=8, timeout=300)
    return [json.loads(line) for line in lines]


def _check_one_winner(config_path: Path) -> None:
    from retrainer.registry import ModelRegistry, connect

    results = _race(config_path)
    winners = [r["version"] for r in results if r["promoted"]]
    assert len(winners) == 1
    config = load_config(config_path)
    registry = ModelRegistry(connect(config), config)
    champion = registry.champion()
    assert champion is not None
    assert champion.version == winners[0]
    previous = registry.version_by_alias("previous-champion")
    assert previous is not None
    assert previous.version == "1"
    champion_moves = [m for m in registry.history.moves() if m.alias == "champion"]
    assert [(m.from_version, m.to_version) for m in champion_moves] == [(None, "1"), ("1", winners[0])]


def test_eight_racing_promotions_on_sqlite_yield_exactly_one(tmp_path: Path) -> None:
    """Eight processes promoting different challengers against v1 at once: exactly one wins, the rest see the CAS."""
    _check_one_winner(_config(tmp_path))


def test_eight_racing_promotions_on_postgresql_yield_exactly_one(tmp_path: Path, postgres_database: str) -> None:
    """The same race on a PostgreSQL store: one promotion, no errors, one champion move on record."""
    _check_one_winner(_config(tmp_path, postgres_database))


def test_with_a_prefect_server_the_lock_is_a_global_concurrency_limit(
        prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """On a worker (PREFECT_API_URL set) a promotion also holds a one-slot Prefect limit, visible in the UI;
    a slot leaked by a killed holder delays the next promotion by seconds, never blocks it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.settings import PREFECT_API_URL

    from retrainer.pipeline import concurrency as locks

    api = str(PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_API_URL", api)
    name = locks.prefect_limit_name("gcl-pumps")
    path = _config(tmp_path, name="gcl-pumps")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PREFECT_API_URL": api})
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
        assert limit.limit == 1
        assert limit.active_slots == 1
        with pytest.raises(LockTimeout), promotion_lock(load_config(path), timeout_seconds=1):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    # The killed holder's slot stays taken: its lease has not run out yet, and the test harness's server
    # runs no lease repossessor that would revoke it when it does.
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 1
    default_wait = locks.PREFECT_SLOT_WAIT_SECONDS
    monkeypatch.setattr(locks, "PREFECT_SLOT_WAIT_SECONDS", 1.0)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="retrainer"), promotion_lock(load_config(path), timeout_seconds=10):
        pass
    assert time.monotonic() - started < 8
    assert f"the Prefect concurrency limit '{name}' stayed taken" in caplog.text
    # Once an operator frees the slot, promotions hold it again, and release it. The default wait again:
    # under a loaded CI machine one second was too short for a free slot's acquisition round trips.
    monkeypatch.setattr(locks, "PREFECT_SLOT_WAIT_SECONDS", default_wait)
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        caplog.clear()
        with promotion_lock(load_config(path), timeout_seconds=10):
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 1
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
    assert "stayed taken" not in caplog.text
