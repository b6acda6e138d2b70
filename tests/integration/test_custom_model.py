"""The team's own training code (`model.estimator: package.module:function`, the factory in
examples/custom_training) through real cycles: it trains the first champion and the challengers,
the gate promotes it, and a model holding an untrusted class of the team's is never registered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrainer.config import load_config
from retrainer.pipeline import cycle
from retrainer.registry import ModelRegistry, connect
from retrainer.registry.downloads import download
from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario
from retrainer.state.journal import read_journal

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_training"
FACTORY = "retrainer_example_model:make_estimator"
TRAINING_FUNCTION = "retrainer_example_model.training:train_with_early_stopping"
SCRIPT = (ScriptedBatch("d1", "stable", "init"), ScriptedBatch("d2", "stable", "none"),
          ScriptedBatch("d3", "concept", "retrain", concept=1), ScriptedBatch("d4", "concept", "none", concept=1))


@pytest.fixture(autouse=True)
def team_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package importable, as `pip install ./examples/custom_training` makes it."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))


def _config(path: Path, **model: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET, **model},
                                    "policy": {"cooldown_batches": 0}}), encoding="utf-8")
    return path


def test_the_teams_factory_trains_every_model_and_a_challenger_is_promoted_through_the_gate(tmp_path: Path) -> None:
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT)
    config = _config(tmp_path / "config" / "retrainer.yaml", estimator=FACTORY,
                     trusted_types=["retrainer_example_model.SignedLog"])
    # ... tuned at every training by scikit-learn's successive halving inside the training rows.
    settings = yaml.safe_load(config.read_text())
    settings["training"] = {"search": {"parameters": {"model__learning_rate": [0.1, 0.3]}, "folds": 2}}
    config.write_text(yaml.safe_dump(settings))
    result = run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work",
                          orchestrated=False)
    decisions = [(r.batch, r.decision, r.promoted) for r in result.records]
    assert decisions[:3] == [("d1", "init", False), ("d2", "none", False), ("d3", "retrain", True)], decisions
    promoted = result.records[2]
    assert promoted.gate is not None
    assert promoted.gate.passed
    loaded = load_config(tmp_path / "work" / "retrainer.yaml")
    registry = ModelRegistry(connect(loaded), loaded)
    champion = registry.champion()
    assert champion is not None
    assert champion.version == promoted.new_champion_version
    run = registry.client.get_run(champion.run_id)
    assert run.data.params["estimator"] == FACTORY
    assert run.data.params["search.model__learning_rate"] in ("0.1", "0.3")
    assert 0.0 <= float(run.data.params["search.cv_score"]) <= 1.0
    model = registry.load_model(champion, fresh=True)  # as a serving process loads it: skops, trusted types
    assert type(model.named_steps["prepare"].named_transformers_["numeric"]).__name__ == "SignedLog"


def test_a_model_with_an_untrusted_team_class_is_never_registered(tmp_path: Path) -> None:
    """Champion v1 from the built-in recipe; the config then names the team's factory but not its class in
    model.trusted_types: the retrain is recorded with a reason naming the class, and @champion stays."""
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT[:2])
    write_scenario(tmp_path / "later", rows=1500, seed=6, script=SCRIPT[2:3])
    config = _config(tmp_path / "config" / "retrainer.yaml")
    run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work", orchestrated=False)
    settings = yaml.safe_load((tmp_path / "work" / "retrainer.yaml").read_text())
    settings["model"]["estimator"] = FACTORY
    (tmp_path / "work" / "retrainer.yaml").write_text(yaml.safe_dump(settings))

    record = cycle.monitor(cycle.PLAIN, str(tmp_path / "work" / "retrainer.yaml"),
                           str(next((tmp_path / "later").glob("*.csv"))))
    assert record["decision"] == "retrain"
    assert record["promoted"] is False
    assert "retrainer_example_model.SignedLog" in record["retrain_error"]
    assert "model.trusted_types" in record["retrain_error"]
    journal = read_journal(tmp_path / "work" / "models" / "pumps" / "timeline.jsonl")
    assert journal[-1].champion_version == "1"
    loaded = load_config(tmp_path / "work" / "retrainer.yaml")
    champion = ModelRegistry(connect(loaded), loaded).champion()
    assert champion is not None
    assert champion.version == "1"


TEAM_FAILURES = """
import numpy as np
from sklearn.dummy import DummyClassifier

def raises():
    raise RuntimeError("feature store unreachable")

class Mute(DummyClassifier):
    def predict(self, X):
        raise ValueError("team code expects a 'segment' column")

def cannot_predict():
    return Mute()

def train_returns_a_dict(train_frame, schema, settings):
    return {"weights": [0.1, 0.2]}
"""

FAILURE_KINDS = [
    # (model.estimator, what the retrain's one-line reason says)
    ("team_models_v2.boosting:make", "model.estimator 'team_models_v2.boosting:make': no module named "
                                     "'team_models_v2' (is the package installed where retrainer runs?)"),
    ("team_needs_a_library:make", "model.estimator 'team_needs_a_library:make': no module named "
                                  "'lightgbm_gpu_edition'"),
    ("team_failures:raises", "model.estimator 'team_failures:raises' raised RuntimeError: feature store unreachable"),
    ("team_failures:cannot_predict", "model.estimator 'team_failures:cannot_predict': predict raised ValueError: "
                                     "team code expects a 'segment' column"),
    ("team_failures:train_returns_a_dict", "model.estimator 'team_failures:train_returns_a_dict' returned a dict, "
                                           "not a fitted model with predict"),
]


def test_every_way_the_teams_code_fails_is_a_recorded_retrain_error_and_the_champion_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Champion v1 from the built-in recipe; then, batch after batch of a concept change, model.estimator names
    training code that cannot train: a wrong import path, a library that is not installed, a function that
    raises, a model that cannot predict, a training function returning something else. Each cycle records
    the retrain with the one-line reason, nothing is registered, @champion stays."""
    team = tmp_path / "team"
    team.mkdir()
    (team / "team_failures.py").write_text(TEAM_FAILURES, encoding="utf-8")
    (team / "team_needs_a_library.py").write_text("import lightgbm_gpu_edition\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(team))
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT[:2])
    config = _config(tmp_path / "config" / "retrainer.yaml")
    run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work", orchestrated=False)
    work_config = tmp_path / "work" / "retrainer.yaml"
    for number, (estimator, reason) in enumerate(FAILURE_KINDS):
        settings = yaml.safe_load(work_config.read_text())
        settings["model"]["estimator"] = estimator
        work_config.write_text(yaml.safe_dump(settings))
        (batch,) = write_scenario(tmp_path / f"later-{number}", rows=1500, seed=6 + number, script=SCRIPT[2:3])
        record = cycle.monitor(cycle.PLAIN, str(work_config), str(batch))
        assert (record["decision"], record["promoted"]) == ("retrain", False), record
        assert record["retrain_error"].startswith(reason), record["retrain_error"]
        assert "\n" not in record["retrain_error"]
    loaded = load_config(work_config)
    registry = ModelRegistry(connect(loaded), loaded)
    assert [version.version for version in registry.versions()] == ["1"]
    champion = registry.champion()
    assert champion is not None
    assert champion.version == "1"


def test_a_built_in_lightgbm_model_judged_on_f1_of_the_failures(tmp_path: Path) -> None:
    """`model.estimator: lightgbm` (the extra) with `model.metric: f1` of class '1': the versions are LightGBM
    pipelines stored as skops and loaded back under the trusted types; records and tags name f1."""
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT)
    config = _config(tmp_path / "config" / "retrainer.yaml", estimator="lightgbm", metric="f1", positive_class="1")
    result = run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work",
                          orchestrated=False)
    assert [r.decision for r in result.records][:3] == ["init", "none", "retrain"]
    assert {r.metric_name for r in result.records[1:]} == {"f1"}
    promoted = result.records[2]
    assert promoted.gate is not None
    assert promoted.gate.metric_name == "f1"
    assert promoted.promoted, promoted.gate.checks
    loaded = load_config(tmp_path / "work" / "retrainer.yaml")
    registry = ModelRegistry(connect(loaded), loaded)
    champion = registry.champion()
    assert champion is not None
    assert champion.tag("metric_name") == "f1"
    assert type(registry.load_model(champion, fresh=True).named_steps["model"]).__name__ == "LGBMClassifier"
    # A serving process that installs the version's requirements gets LightGBM too.
    source = registry.client.get_model_version_download_uri(loaded.registered_model, champion.version)
    requirements = download(loaded, f"{source}/requirements.txt", tmp_path / "req").read_text()
    assert "lightgbm==" in requirements


def test_a_team_metric_that_raises_leaves_the_cycle_standing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Champion v1 judged on accuracy; the config then names a team metric that raises: each batch loses its
    metric (a warning names the function and the error), not its cycle: the record is written and @champion
    stays. Training under it fails in one line naming the function."""
    team = tmp_path / "team"
    team.mkdir()
    (team / "team_metrics.py").write_text(
        "def fragile(y_true, y_pred, y_proba):\n    raise KeyError('segment')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(team))
    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT[:2])
    write_scenario(tmp_path / "later", rows=1500, seed=6, script=SCRIPT[1:2])
    config = _config(tmp_path / "config" / "retrainer.yaml")
    run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / "work", orchestrated=False)
    settings = yaml.safe_load((tmp_path / "work" / "retrainer.yaml").read_text())
    settings["model"] |= {"metric": "team_metrics:fragile", "metric_higher_is_better": True}
    (tmp_path / "work" / "retrainer.yaml").write_text(yaml.safe_dump(settings))

    record = cycle.monitor(cycle.PLAIN, str(tmp_path / "work" / "retrainer.yaml"),
                           str(next((tmp_path / "later").glob("*.csv"))))
    assert record["decision"] == "none"
    assert record["metric"] is None
    assert record["metric_name"] == "team_metrics:fragile"
    assert "model.metric 'team_metrics:fragile' raised KeyError: 'segment'" in caplog.text
    loaded = load_config(tmp_path / "work" / "retrainer.yaml")
    champion = ModelRegistry(connect(loaded), loaded).champion()
    assert champion is not None
    assert champion.version == "1"


def test_a_fleet_runs_library_and_team_models_each_on_its_own_metric(tmp_path: Path, prefect_api: str) -> None:
    """One `monitor-fleet` flow run on a Dask worker process: a built-in LightGBM model judged on F1 of the
    failures and the team's package — its training function, early stopping of its own — judged on its cost
    both retrain on the concept change and are promoted, each through the gate on its own metric."""
    from retrainer.pipeline.fleet import run_fleet

    write_scenario(tmp_path / "batches", rows=1500, seed=5, script=SCRIPT[:2])
    write_scenario(tmp_path / "later", rows=1500, seed=6, script=SCRIPT[2:3])
    models = {"library": {"estimator": "lightgbm", "metric": "f1", "positive_class": "1"},
              "team": {"estimator": TRAINING_FUNCTION, "trusted_types": ["retrainer_example_model.SignedLog"],
                       "metric": "retrainer_example_model.metrics:cost_per_reading", "metric_higher_is_better": False}}
    jobs = []
    for name, settings in models.items():
        config = _config(tmp_path / name / "retrainer.yaml", **settings)
        run_backtest(tmp_path / "batches", TARGET, config_path=config, workdir=tmp_path / name / "work",
                     name=name, orchestrated=False)
        jobs.append((tmp_path / name / "work" / "retrainer.yaml", next((tmp_path / "later").glob("*.csv"))))
    results = run_fleet(jobs, workers=1)
    assert [result.get("error") for result in results] == [None, None], results
    records = [result["record"] for result in results]
    assert [(r["decision"], r["promoted"]) for r in records] == [("retrain", True), ("retrain", True)], records
    assert [r["gate"]["metric_name"] for r in records] == ["f1", "retrainer_example_model.metrics:cost_per_reading"]
    team = load_config(tmp_path / "team" / "work" / "retrainer.yaml")
    registry = ModelRegistry(connect(team), team)
    champion = registry.champion()
    assert champion is not None
    assert registry.client.get_run(champion.run_id).data.params["estimator"] == TRAINING_FUNCTION
    trees = registry.load_model(champion, fresh=True).named_steps["model"].n_estimators
    assert 10 <= trees < 600  # chosen by the team's early stopping
