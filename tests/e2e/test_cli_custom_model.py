"""The team's own model on the command line: examples/custom_training installed as a package (pip, as a
team installs its training code: feature engineering + LightGBM, tuned by successive halving, judged on
the team's cost metric), its config used by `retrainer init` and `retrainer backtest`."""

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


def test_the_example_package_trains_the_champion_and_a_challenger_promoted_on_the_team_metric(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    """A concept change raises the team's cost; the LightGBM challenger retrained on the new concept lowers it
    on the gate's holdout, and the gate promotes it on that metric."""
    script = (ScriptedBatch("d1", "stable", "init"), ScriptedBatch("d2", "stable", "none"),
              ScriptedBatch("d3", "concept", "retrain", concept=1), ScriptedBatch("d4", "concept", "none", concept=1))
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=script)
    out = tmp_path / "timeline.json"
    done = run_cli("backtest", str(tmp_path / "batches"), "--target", TARGET, "--config",
                   str(EXAMPLE / "retrainer.yaml"), "--json", str(out), "--workdir", str(tmp_path / "w"), extra_env=installed)
    assert done.returncode == 0, done.stderr[-2000:]
    batches = read_timeline(out)["batches"]
    decisions = [(b["batch"], b["decision"], b.get("promoted")) for b in batches]
    assert decisions[2] == ("d3", "retrain", True), decisions
    metric = "retrainer_example_model.metrics:cost_per_reading"
    assert {b["metric_name"] for b in batches[1:]} == {metric}
    # The cost rose with the change (lower is better): that is what asked for the retrain.
    assert batches[2]["metric"] > batches[1]["metric"]
    gate = batches[2]["gate"]
    assert gate["metric_name"] == metric
    assert gate["passed"], gate
    assert gate["challenger_metric"] < gate["champion_metric"], gate
    assert gate["ci_low"] > 0, gate
    model = yaml.safe_load((tmp_path / "w" / "retrainer.yaml").read_text())["model"]
    assert model["estimator"] == "retrainer_example_model:make_estimator"

    # Without the package where retrainer runs, `init` says so in one line (the metric is checked first).
    config = tmp_path / "missing" / "retrainer.yaml"
    config.parent.mkdir()
    config.write_text((EXAMPLE / "retrainer.yaml").read_text())
    done = run_cli("init", "--config", str(config), "--data", str(tmp_path / "batches" / "d1.csv"))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "retrainer: error: model.metric 'retrainer_example_model.metrics:cost_per_reading': no module named "
        "'retrainer_example_model' (is the package installed where retrainer runs?)"], done.stderr
    assert "Traceback" not in done.stdout
