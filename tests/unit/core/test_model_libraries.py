"""LightGBM and XGBoost as built-in estimators (the `lightgbm` and `xgboost` extras), and their absence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from retrainer.config import TrainingSettings
from retrainer.core.metrics import metric_spec
from retrainer.core.schema import BatchSchema
from retrainer.core.training import TrainingError, build_estimator, train
from retrainer.registry.trust import load_skops, trusted_types


def _frame(rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"site": rng.choice(["north", "south", "east"], rows), "temp": rng.normal(60, 10, rows),
                          "vibration": rng.gamma(2.0, 1.0, rows)})
    risk = (frame["temp"] - 60) / 10 + frame["vibration"] - 2 + (frame["site"] == "east")
    frame["failure"] = np.where(risk + rng.normal(0, 0.5, rows) > 0.5, "fail", "ok")
    frame["load"] = 3 * frame["temp"] + rng.normal(0, 5, rows)
    return frame


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_a_library_classifier_learns_text_classes_and_survives_skops_under_the_built_in_trust(
        library: str, tmp_path: Path) -> None:
    schema = BatchSchema(target="failure", task="classification", numeric=("temp", "vibration"), categorical=("site",))
    trained = train(_frame(), schema, library, TrainingSettings(), metric_spec("classification", "roc_auc"))
    assert trained.validation_metric > 0.8
    inputs = _frame(50)[["site", "temp", "vibration"]]
    assert set(trained.pipeline.predict(inputs)) <= {"fail", "ok"}
    assert list(trained.pipeline.classes_) == ["fail", "ok"]
    path = tmp_path / "model.skops"
    skops.io.dump(trained.pipeline, path)
    loaded = load_skops(path, trusted_types([]))
    assert (loaded.predict(inputs) == trained.pipeline.predict(inputs)).all()


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_a_library_regressor_trains_on_the_window(library: str) -> None:
    schema = BatchSchema(target="load", task="regression", numeric=("temp", "vibration"), categorical=("site",))
    trained = train(_frame(), schema, library, TrainingSettings())
    assert trained.validation_metric < 10  # RMSE against a noise of 5


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_a_library_that_is_not_installed_is_named_with_its_extra(library: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # what Python does for a package that is not there
    schema = BatchSchema(target="failure", task="classification", numeric=("temp",), categorical=())
    with pytest.raises(TrainingError, match=rf"^model.estimator '{library}' needs {library}, which is not installed "
                                            rf"where retrainer runs \(pip install 'retrainer\[{library}\]'\)$"):
        build_estimator(library, schema)
