"""The team's own model on the command line: examples/custom_training installed as a package (pip, as a
team installs its training code), its config used by `retrainer init` and `retrainer backtest`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

from .cli import read_timeline, run_cli

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_training"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example package pip-installed into a folder of its own; the environment that puts it on the path."""
    site = tmp_path_factory.mktemp("team-site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                           str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:  # pip builds it with setuptools from the package index
        reason = f"cannot pip-install examples/custom_training: {done.stderr.strip().splitlines()[-1:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return {"PYTHONPATH": str(site)}


def test_the_example_package_trains_the_champion_and_a_promoted_challenger(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    script = (ScriptedBatch("d1", "stable", "init"), ScriptedBatch("d2", "stable", "none"),
              ScriptedBatch("d3", "concept", "retrain", concept=1), ScriptedBatch("d4", "concept", "none", concept=1))
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=script)
    out = tmp_path / "timeline.json"
    done = run_cli("backtest", str(tmp_path / "batches"), "--target", TARGET, "--config",
                   str(EXAMPLE / "retrainer.yaml"), "--json", str(out), "--workdir", str(tmp_path / "w"), extra_env=installed)
    assert done.returncode == 0, done.stderr[-2000:]
    decisions = [(b["batch"], b["decision"], b.get("promoted")) for b in read_timeline(out)["batches"]]
    assert decisions[2] == ("d3", "retrain", True), decisions
    model = yaml.safe_load((tmp_path / "w" / "retrainer.yaml").read_text())["model"]
    assert model["estimator"] == "retrainer_example_model:make_estimator"

    # Without the package where retrainer runs, `init` says so in one line.
    config = tmp_path / "missing" / "retrainer.yaml"
    config.parent.mkdir()
    config.write_text((EXAMPLE / "retrainer.yaml").read_text())
    done = run_cli("init", "--config", str(config), "--data", str(tmp_path / "batches" / "d1.csv"))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "retrainer: error: model.estimator 'retrainer_example_model:make_estimator': no module named "
        "'retrainer_example_model' (is the package installed where retrainer runs?)"], done.stderr
    assert "Traceback" not in done.stdout
