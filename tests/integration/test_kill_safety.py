"""A cycle killed with SIGKILL at several points of retrain → register → evaluate → promote leaves
@champion on a complete, loadable version, and the batch can simply be run again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.config import load_config
from retrainer.core.schema import feature_frame, schema_from_settings
from retrainer.replay.scenario import ScriptedBatch, make_batch
from retrainer.state.journal import read_journal
from retrainer.state.stores import with_saved_columns

from .conftest import initialise_model

pytestmark = pytest.mark.integration

RETRAINER = str(Path(sys.executable).with_name("retrainer"))


@pytest.fixture(scope="module")
def initialised(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with champion v1, and a concept-change batch waiting that will retrain and promote."""
    root = tmp_path_factory.mktemp("kill")
    rng = np.random.default_rng(21)
    make_batch(ScriptedBatch("b1", "stable", "init"), 0, 1500, rng).to_csv(root / "b1.csv", index=False)
    make_batch(ScriptedBatch("b2", "concept", "retrain", concept=1), 1, 1500, rng).to_csv(root / "b2.csv", index=False)
    # The file lock only: the kernel frees it the moment its holder dies (a Prefect limit's slot waits
    # for its lease to end).
    initialise_model(root, {"promotion": {"prefect_concurrency_limit": False}}, root / "b1.csv")
    return root


def _client(root: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _alias(client: Any, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias("pumps", alias).version)
    except Exception:
        return None


def _training_run_started(client: Any) -> bool:
    experiment = client.get_experiment_by_name("pumps-training")
    return any(run.info.status == "RUNNING" for run in client.search_runs([experiment.experiment_id]))


def _version_created(client: Any) -> bool:
    return len(client.search_model_versions("name = 'pumps'")) >= 2


def _challenger_set(client: Any) -> bool:
    return _alias(client, "challenger") == "2"


def _promotion_started(client: Any) -> bool:
    return _alias(client, "previous-champion") == "1"


POINTS: dict[str, Callable[[Any], bool]] = {
    "while logging the challenger's run": _training_run_started,
    "right after the version is created": _version_created,
    "after @challenger is set (evaluating)": _challenger_set,
    "in the middle of the promotion": _promotion_started,
}


def _environment() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    api = PREFECT_API_URL.value()
    if api:  # the harness's API: the command needs no server of its own
        env["PREFECT_API_URL"] = api
    return env


def _assert_champion_loadable(root: Path) -> str:
    import mlflow.sklearn

    client = _client(root)
    champion = _alias(client, "champion")
    assert champion is not None, "no @champion after the kill"
    version = client.get_model_version("pumps", champion)
    assert version.tags.get("retrainer.registered_by") == "retrainer"
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # models:/ URIs resolve against this copy's registry
    model = mlflow.sklearn.load_model(f"models:/pumps/{champion}")
    schema = schema_from_settings(with_saved_columns(load_config(root / "retrainer.yaml")).model)
    inputs = feature_frame(pd.read_csv(root / "b2.csv").head(20), schema)
    assert len(model.predict(inputs)) == 20
    return champion


@pytest.mark.parametrize("point", list(POINTS))
def test_a_cycle_killed_mid_retrain_leaves_a_loadable_champion(initialised: Path, tmp_path: Path,
                                                                point: str) -> None:
    """SIGKILL at this point: @champion still resolves to a complete version that loads and predicts,
    and running the batch again completes the cycle."""
    root = tmp_path / "work"
    shutil.copytree(initialised, root)
    reached = POINTS[point]
    client = _client(root)
    process = subprocess.Popen([RETRAINER, "run", "--config", str(root / "retrainer.yaml"), str(root / "b2.csv")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_environment())
    deadline = time.monotonic() + 300
    try:
        while not reached(client):
            if process.poll() is not None:
                pytest.fail(f"the cycle ended before '{point}' (exit {process.returncode}): "
                            f"{process.stderr.read()[-1500:] if process.stderr else ''}")
            assert time.monotonic() < deadline, f"'{point}' was never reached"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    before = _assert_champion_loadable(root)
    again = subprocess.run([RETRAINER, "run", "--config", str(root / "retrainer.yaml"), str(root / "b2.csv")],
                           capture_output=True, text=True, timeout=600, env=_environment())
    assert again.returncode == 0, again.stderr[-2000:]
    records = read_journal(root / "models" / "pumps" / "timeline.jsonl")
    assert [r.batch for r in records] == ["b1", "b2"]  # the killed cycle left no half record
    # Killed before its promotion, the cycle retrains again; killed just after @champion moved, the
    # new champion serves the batch well and nothing needs retraining.
    assert records[-1].decision == ("retrain" if before == "1" else "none"), records[-1]
    assert _assert_champion_loadable(root) == (records[-1].new_champion_version or before)
