"""The team's own training code named by `model.estimator` (`package.module:function`): found, called,
and every way it can fail turned into one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.config import ModelSettings, SearchSettings, TrainingSettings
from retrainer.core.plugins import PluginError, call_with, load_function
from retrainer.core.schema import infer_schema
from retrainer.core.training import TrainingError, build_estimator, train

TEAM_CODE = '''
from sklearn.linear_model import LogisticRegression

SEEN = {}

def plain():
    return LogisticRegression(max_iter=500)

def with_schema(schema):
    SEEN["features"] = schema.features
    return LogisticRegression(max_iter=500)

def raises():
    raise RuntimeError("tuning service unreachable\\nsecond line")

def not_an_estimator():
    return [1, 2, 3]

class Breaks:
    def fit(self, X, y):
        raise ValueError("could not convert string to float: 'red'")
    def predict(self, X):
        return X

def breaks_at_fit():
    return Breaks()

NOT_CALLABLE = 3

def train_model(train_frame, schema, settings):
    SEEN["train_rows"] = len(train_frame)
    SEEN["columns"] = list(train_frame.columns)
    SEEN["seed"] = settings.seed
    model = LogisticRegression(max_iter=500)
    return model.fit(train_frame[list(schema.features)] * 2, train_frame[schema.target])

def train_nothing(train_frame):
    return None
'''


@pytest.fixture
def team_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "team_model.py").write_text(TEAM_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "team_model"


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(0, 1, 200), "x2": rng.normal(0, 1, 200)})
    frame["y"] = (frame.x1 + rng.normal(0, 0.3, 200) > 0).astype(int)
    return frame


def test_a_factory_is_called_with_the_schema_when_it_names_it(team_module: str) -> None:
    schema = infer_schema(_frame(), ModelSettings(target="y"))
    trained = train(_frame(), schema, f"{team_module}:with_schema", TrainingSettings())
    assert trained.estimator == f"{team_module}:with_schema"
    assert trained.validation_metric > 0.8
    assert load_function(f"{team_module}:with_schema", "model.estimator").__globals__["SEEN"]["features"] == ("x1", "x2")
    assert call_with(load_function(f"{team_module}:plain", "s"), schema=schema).max_iter == 500


@pytest.mark.parametrize(("path", "message"), [
    ("team_model", "model.estimator 'team_model': unknown estimator"),
    ("team_model:", "model.estimator 'team_model:': not an import path of the form 'package.module:function'"),
    ("no_such_team.models:make", "model.estimator 'no_such_team.models:make': no module named 'no_such_team' "
     "(is the package installed where retrainer runs?)"),
    ("team_model:missing", "model.estimator 'team_model:missing': module 'team_model' has no 'missing'"),
    ("team_model:NOT_CALLABLE", "model.estimator 'team_model:NOT_CALLABLE': 'NOT_CALLABLE' is a int, not a function"),
    ("team_model:raises", "model.estimator 'team_model:raises' raised RuntimeError: tuning service unreachable"),
    ("team_model:not_an_estimator", "model.estimator 'team_model:not_an_estimator' returned a list, not an unfitted "
     "estimator with fit and predict"),
])
def test_every_way_the_factory_fails_is_one_line_naming_the_setting(team_module: str, path: str, message: str) -> None:
    schema = infer_schema(_frame(), ModelSettings(target="y"))
    with pytest.raises(TrainingError) as caught:
        build_estimator(path, schema)
    if message.endswith("unknown estimator"):
        assert str(caught.value).startswith("unknown estimator 'team_model' (model.estimator)")
    else:
        assert str(caught.value) == message


def test_a_fit_that_raises_is_a_training_error(team_module: str) -> None:
    schema = infer_schema(_frame(), ModelSettings(target="y"))
    with pytest.raises(TrainingError, match=r"^model.estimator 'team_model:breaks_at_fit': fit raised ValueError: "
                                           r"could not convert string to float: 'red'$"):
        train(_frame(), schema, "team_model:breaks_at_fit", TrainingSettings())


def test_a_module_that_fails_at_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_team.py").write_text("import nonexistent_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"no module named 'nonexistent_dependency_xyz'"):
        load_function("broken_team:make", "model.estimator")
    (tmp_path / "raising_team.py").write_text("raise ImportError('needs lightgbm >= 4')\n")
    with pytest.raises(PluginError, match=r"^model.estimator 'raising_team:make': importing 'raising_team' raised "
                                           r"ImportError: needs lightgbm >= 4$"):
        load_function("raising_team:make", "model.estimator")


def test_a_training_function_gets_the_training_rows_only_and_returns_the_fitted_model(team_module: str) -> None:
    """`(train_frame, schema, settings)`: the team's code fits as it likes, on the training part of the window
    (features and target; the validation rows and the gate's holdout never reach it)."""
    schema = infer_schema(_frame(), ModelSettings(target="y"))
    trained = train(_frame(), schema, f"{team_module}:train_model", TrainingSettings())
    seen = load_function(f"{team_module}:train_model", "s").__globals__["SEEN"]
    assert seen["train_rows"] == trained.train_rows == 160
    assert seen["columns"] == ["x1", "x2", "y"]
    assert seen["seed"] == TrainingSettings().seed
    assert trained.validation_metric > 0.8
    with pytest.raises(TrainingError, match=r"^model.estimator 'team_model:train_nothing' returned a NoneType, not a "
                                           r"fitted model with predict$"):
        train(_frame(), schema, "team_model:train_nothing", TrainingSettings())


def test_a_search_tunes_a_factorys_estimator_within_the_training_rows(team_module: str) -> None:
    """training.search: scikit-learn's successive halving picks among the candidates by cross-validation on
    the training rows; the choice is kept with the model. A misspelt parameter is one line."""
    schema = infer_schema(_frame(), ModelSettings(target="y"))
    settings = TrainingSettings(search=SearchSettings(parameters={"C": [0.001, 1.0, 100.0]}, folds=3))
    trained = train(_frame(), schema, f"{team_module}:plain", settings)
    assert trained.search is not None
    assert trained.search["C"] in ("0.001", "1.0", "100.0")
    assert float(trained.search["cv_score"]) > 0.5
    assert str(trained.pipeline.get_params()["C"]) == trained.search["C"]
    wrong = TrainingSettings(search=SearchSettings(parameters={"model__C": [1.0, 2.0]}))
    with pytest.raises(TrainingError, match=r"^training.search: ValueError: Invalid parameter 'model' for estimator"):
        train(_frame(), schema, f"{team_module}:plain", wrong)
