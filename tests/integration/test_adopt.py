"""`retrainer adopt`: a model version a team trained and registered with plain MLflow calls becomes the
champion (loaded under the safe-loading rules, measured on the reference data), and the cycle runs on it;
a version holding a type nobody trusted, or saved with pickle, is refused with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.config import load_config
from retrainer.core.schema import resolve_model_settings
from retrainer.pipeline import cycle
from retrainer.registry import ModelRegistry, RegistryError, UntrustedModel, connect
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch
from retrainer.state.journal import read_journal
from retrainer.state.stores import save_model_settings

pytestmark = pytest.mark.integration

TEAM_CLASS = '''
from sklearn.base import BaseEstimator, TransformerMixin

class Clip(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self
    def transform(self, X):
        return X.clip(-1e6, 1e6) if hasattr(X, "clip") else X
'''


def _batch(name: str, day: int, seed: int, **change: object) -> pd.DataFrame:
    return make_batch(ScriptedBatch(name, "x", "x", **change), day, 1500, np.random.default_rng(seed))  # type: ignore[arg-type]


def _team_model(frame: pd.DataFrame, extra_step: object | None = None) -> object:
    """What a team would have trained: its own preprocessing and a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in CATEGORICAL if c in frame.columns]
    numeric = [c for c in frame.columns if c not in (*categorical, TARGET, "reading_id", "event_time")]
    steps: list[tuple[str, object]] = [("prepare", ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
         ("numeric", StandardScaler(), numeric)]))]
    if extra_step is not None:
        steps.append(("team step", extra_step))
    model = Pipeline([*steps, ("model", LogisticRegression(max_iter=1000))])
    return model.fit(frame[categorical + numeric], frame[TARGET])


def _register_as_a_team_would(tracking_uri: str, name: str, model: object, **options: object) -> str:
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("team-experiments")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, **options)
    return f"models:/{name}/{info.registered_model_version}"


CATEGORICAL = ("site", "machine_type", "shift")


def _project(tmp_path: Path, numeric_only: bool = False) -> Path:
    config = tmp_path / "retrainer.yaml"
    # The team's model is a small logistic regression, retrainer's challengers boosted trees ~100× its size:
    # the gate's size cap (a ratio to the champion's) is widened for that, as such a team would.
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET}, "policy": {"cooldown_batches": 0},
                                      "promotion": {"max_size_ratio": 1000}}), encoding="utf-8")
    reference = _batch("reference", 0, 1)
    if numeric_only:  # a booster trained on numbers: the team's stream carries numeric features only
        reference = reference.drop(columns=list(CATEGORICAL))
    reference.to_csv(tmp_path / "reference.csv", index=False)
    # The columns resolved from the reference, as `retrainer adopt` does before its flow runs.
    loaded = load_config(config)
    save_model_settings(loaded, resolve_model_settings(reference, loaded.model))
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path)


def test_a_teams_model_is_adopted_as_champion_and_the_cycle_runs_on_it(project: Path, tmp_path: Path) -> None:
    config = load_config(project)
    uri = _register_as_a_team_would(config.tracking_uri, "team-pumps", _team_model(_batch("old", 0, 2)),
                                    serialization_format="skops")
    record = cycle.adopt(cycle.PLAIN, str(project), uri, str(tmp_path / "reference.csv"), "a.person")
    assert (record["decision"], record["reasons"]) == ("init", [f"adopted {uri}"])
    registry = ModelRegistry(connect(config), config)
    champion = registry.champion()
    assert champion is not None
    assert champion.version == record["champion_version"] == "1"
    assert (champion.tags["retrainer.adopted_from"], champion.tags["retrainer.adopted_by"]) == (uri, "a.person")
    assert champion.tags["retrainer.adopted_at"].startswith(str(datetime.now(UTC).year))
    assert registry.client.get_run(champion.run_id).data.params["estimator"] == f"adopted {uri}"
    assert 0.5 < float(champion.tags["retrainer.validation_metric"]) <= 1.0
    assert config.suite_path.exists()  # drafted from the reference

    _batch("day-1", 1, 3).to_csv(tmp_path / "day-1.csv", index=False)
    _batch("day-2", 2, 4, concept=1).to_csv(tmp_path / "day-2.csv", index=False)
    stable = cycle.monitor(cycle.PLAIN, str(project), str(tmp_path / "day-1.csv"))
    assert (stable["decision"], stable["champion_version"]) == ("none", "1")
    changed = cycle.monitor(cycle.PLAIN, str(project), str(tmp_path / "day-2.csv"))
    assert changed["decision"] == "retrain"
    assert changed["promoted"] is True  # retrainer's own challenger beat the adopted model on fresh rows
    journal = read_journal(tmp_path / "models" / "pumps" / "timeline.jsonl")
    assert [r.batch for r in journal] == ["reference", "day-1", "day-2"]
    # A model that has a champion is not adopted over: the refusal says what to do instead.
    with pytest.raises(RegistryError, match=r"already has @champion \(version 2\); init and adopt make the first "
                                            r"champion only — use `retrainer run`"):
        cycle.adopt(cycle.PLAIN, str(project), uri, str(tmp_path / "reference.csv"), "a.person")


def _log_with_own_flavor(tracking_uri: str, flavor: str, model: object) -> str:
    """The team logged its booster with MLflow's own flavor, pickle-free: LightGBM's with skops, XGBoost's
    in its own default format (UBJSON)."""
    import mlflow
    import mlflow.lightgbm
    import mlflow.xgboost

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("team-experiments")
    with mlflow.start_run():
        if flavor == "lightgbm":
            info = mlflow.lightgbm.log_model(model, name="model", registered_model_name=f"team-{flavor}",
                                             serialization_format="skops")
        else:
            # (The requirement named: this environment has XGBoost as `xgboost-cpu`, which MLflow cannot infer.)
            info = mlflow.xgboost.log_model(model, name="model", registered_model_name=f"team-{flavor}",
                                            pip_requirements=["xgboost"])
    return f"models:/team-{flavor}/{info.registered_model_version}"


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_a_booster_logged_with_its_own_mlflow_flavor_is_adopted(flavor: str, tmp_path: Path) -> None:
    """An LGBMClassifier (mlflow.lightgbm, skops) or an XGBClassifier (mlflow.xgboost, UBJSON) trained on the
    numeric features becomes the champion, scores the next batch, and is stored by retrainer as its own
    version (skops, the booster in its library's format)."""
    from lightgbm import LGBMClassifier
    from xgboost import XGBClassifier

    project = _project(tmp_path, numeric_only=True)
    config = load_config(project)
    old = _batch("old", 0, 2).drop(columns=list(CATEGORICAL))
    features = [c for c in old.columns if c not in (TARGET, "reading_id", "event_time")]
    booster = (LGBMClassifier(n_estimators=40, verbose=-1) if flavor == "lightgbm"
               else XGBClassifier(n_estimators=40, max_depth=4))
    uri = _log_with_own_flavor(config.tracking_uri, flavor, booster.fit(old[features], old[TARGET]))

    record = cycle.adopt(cycle.PLAIN, str(project), uri, str(tmp_path / "reference.csv"), "a.person")
    assert record["champion_version"] == "1"
    registry = ModelRegistry(connect(config), config)
    champion = registry.champion()
    assert champion is not None
    assert 0.6 < float(champion.tags["retrainer.validation_metric"]) <= 1.0
    assert type(registry.load_model(champion, fresh=True).model).__name__ == type(booster).__name__
    _batch("day-1", 1, 3).drop(columns=list(CATEGORICAL)).to_csv(tmp_path / "day-1.csv", index=False)
    stable = cycle.monitor(cycle.PLAIN, str(project), str(tmp_path / "day-1.csv"))
    assert (stable["decision"], stable["champion_version"]) == ("none", "1")
    assert stable["metric"] > 0.6


def test_a_version_with_an_untrusted_type_or_pickle_is_refused(project: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "team_code.py").write_text(TEAM_CLASS)
    monkeypatch.syspath_prepend(str(tmp_path))
    from team_code import Clip  # type: ignore[import-not-found]

    config = load_config(project)
    custom = _register_as_a_team_would(config.tracking_uri, "team-pumps", _team_model(_batch("old", 0, 2), Clip()),
                                       serialization_format="skops", skops_trusted_types=["team_code.Clip"])
    with pytest.raises(UntrustedModel, match=rf"^{custom}: refused: its model holds types retrainer does not trust: "
                                             r"team_code.Clip \(if they are your own classes, list them in "
                                             r"model.trusted_types\)$"):
        cycle.adopt(cycle.PLAIN, str(project), custom, str(tmp_path / "reference.csv"), "a.person")
    pickled = _register_as_a_team_would(config.tracking_uri, "team-pumps", _team_model(_batch("old", 0, 2)),
                                        serialization_format="cloudpickle")
    with pytest.raises(UntrustedModel, match=r"saved as 'cloudpickle': retrainer loads only skops models"):
        cycle.adopt(cycle.PLAIN, str(project), pickled, str(tmp_path / "reference.csv"), "a.person")
    assert ModelRegistry(connect(config), config).champion() is None


def test_a_pickled_or_bare_booster_is_refused_before_it_is_read(project: Path, tmp_path: Path) -> None:
    """MLflow's own flavors, but a pickled LGBMClassifier or a bare XGBoost Booster (scores, not answers): refused
    from the MLmodel file, with what to log instead."""
    import mlflow
    import mlflow.lightgbm
    import mlflow.xgboost
    from lightgbm import LGBMClassifier
    from xgboost import XGBClassifier

    config = load_config(project)
    old = _batch("old", 0, 2).drop(columns=list(CATEGORICAL))
    features = [c for c in old.columns if c not in (TARGET, "reading_id", "event_time")]
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    mlflow.set_experiment("team-experiments")
    with mlflow.start_run():
        pickled = mlflow.lightgbm.log_model(LGBMClassifier(n_estimators=5, verbose=-1).fit(old[features], old[TARGET]),
                                            name="lgbm", registered_model_name="team-lgbm",
                                            serialization_format="cloudpickle")
        bare = mlflow.xgboost.log_model(XGBClassifier(n_estimators=5).fit(old[features], old[TARGET]).get_booster(),
                                        name="booster", registered_model_name="team-booster",
                                        pip_requirements=["xgboost"])
    with pytest.raises(UntrustedModel, match=r"saved as 'cloudpickle': retrainer loads only skops models"):
        cycle.adopt(cycle.PLAIN, str(project), f"models:/team-lgbm/{pickled.registered_model_version}",
                    str(tmp_path / "reference.csv"), "a.person")
    with pytest.raises(UntrustedModel, match=r"xgboost flavor is a 'xgboost.core.Booster': retrainer adopts "
                                             r"XGBClassifier and XGBRegressor"):
        cycle.adopt(cycle.PLAIN, str(project), f"models:/team-booster/{bare.registered_model_version}",
                    str(tmp_path / "reference.csv"), "a.person")
    assert ModelRegistry(connect(config), config).champion() is None
