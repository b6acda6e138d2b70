"""Named scikit-learn pipelines and how a model is fitted on a training window (pure).

Training is deterministic given the data and the seed; logging the model to MLflow is the
registry's job, not this module's.
"""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.metaestimators import available_if

from retrainer.config import Task, TrainingSettings
from retrainer.core.importance import importance_shares
from retrainer.core.metrics import MetricSpec, Outputs, as_outputs, measure, metric_std_error, primary_metric
from retrainer.core.plugins import PluginError, call_with, is_import_path, load_function, one_line
from retrainer.core.schema import BatchSchema, feature_frame, labels_as_text, target_values
from retrainer.errors import UserError

DEFAULT_ESTIMATOR = "hist_gradient_boosting"


class TrainingError(UserError):
    """Training cannot proceed; the message says why (too few rows, one class, unknown estimator)."""


def _tree_preprocessor(schema: BatchSchema) -> ColumnTransformer:
    # Trees need no scaling; categories become ordinal codes that HGB treats as categorical.
    return ColumnTransformer(
        [
            # HGB takes at most 255 categories per column: rarer values share one code.
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                           encoded_missing_value=np.nan, max_categories=250),
             list(schema.categorical)),
            ("numeric", "passthrough", list(schema.numeric)),
        ],
        verbose_feature_names_out=False,
    )


def _linear_preprocessor(schema: BatchSchema) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(schema.categorical)),
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(schema.numeric)),
        ]
    )


def _hist_gradient_boosting(schema: BatchSchema, seed: int) -> Pipeline:
    categorical_mask = [True] * len(schema.categorical) + [False] * len(schema.numeric)
    model_cls = HistGradientBoostingClassifier if schema.task == "classification" else HistGradientBoostingRegressor
    return Pipeline([
        ("prepare", _tree_preprocessor(schema)),
        ("model", model_cls(categorical_features=categorical_mask or None, random_state=seed)),
    ])


def _random_forest(schema: BatchSchema, seed: int) -> Pipeline:
    model_cls = RandomForestClassifier if schema.task == "classification" else RandomForestRegressor
    return Pipeline([
        ("prepare", _linear_preprocessor(schema)),
        ("model", model_cls(n_estimators=200, min_samples_leaf=2, n_jobs=-1, random_state=seed)),
    ])


def _linear(schema: BatchSchema, seed: int) -> Pipeline:
    model: BaseEstimator = (
        LogisticRegression(max_iter=1000) if schema.task == "classification" else Ridge(alpha=1.0)
    )
    return Pipeline([("prepare", _linear_preprocessor(schema)), ("model", model)])


def _library(name: str, extra: str) -> Any:
    """An optional model library, or a TrainingError saying which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise TrainingError(f"model.estimator '{extra}' needs {name}, which is not installed where retrainer runs "
                            f"(pip install 'retrainer[{extra}]')") from None


def _lightgbm(schema: BatchSchema, seed: int) -> Pipeline:
    lightgbm = _library("lightgbm", "lightgbm")
    model_cls = lightgbm.LGBMClassifier if schema.task == "classification" else lightgbm.LGBMRegressor
    # One thread: a retrain shares its machine with the cycle's other work; verbose -1: no C++ chatter.
    model = model_cls(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                      subsample=0.9, subsample_freq=1, colsample_bytree=0.9, random_state=seed, n_jobs=1, verbose=-1)
    return Pipeline([("prepare", _tree_preprocessor(schema)), ("model", model)])


def _xgboost(schema: BatchSchema, seed: int) -> Pipeline:
    xgboost = _library("xgboost", "xgboost")
    settings = {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 4, "subsample": 0.9,
                "colsample_bytree": 0.9, "random_state": seed, "n_jobs": 1}
    model: BaseEstimator = (EncodedLabels(xgboost.XGBClassifier(**settings)) if schema.task == "classification"
                            else xgboost.XGBRegressor(**settings))
    return Pipeline([("prepare", _tree_preprocessor(schema)), ("model", model)])


ESTIMATORS: dict[str, Callable[[BatchSchema, int], Pipeline]] = {
    "hist_gradient_boosting": _hist_gradient_boosting,
    "random_forest": _random_forest,
    "linear": _linear,
    # Optional libraries (extras); their boosters are stored in their own formats inside the skops file.
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}


def build_estimator(name: str | None, schema: BatchSchema, seed: int = 0) -> BaseEstimator:
    """The unfitted estimator of `model.estimator` (None: the default): a built-in pipeline, seeded, or
    what the team's factory `package.module:function` returns (called with `schema=` when its signature
    names it; it takes the feature frame as it is). Raises TrainingError naming what went wrong."""
    key = name or DEFAULT_ESTIMATOR
    if is_import_path(key):
        return _user_estimator(key, _team_function(key), schema)
    if key not in ESTIMATORS:
        raise TrainingError(f"unknown estimator '{key}' (model.estimator); choose one of: {', '.join(ESTIMATORS)}, "
                            "or name your own factory as 'package.module:function'")
    return ESTIMATORS[key](schema, seed)


def _team_function(path: str) -> Callable[..., Any]:
    try:
        return load_function(path, "model.estimator")
    except PluginError as exc:
        raise TrainingError(str(exc)) from None


def _user_estimator(path: str, factory: Callable[..., Any], schema: BatchSchema) -> BaseEstimator:
    try:
        estimator = call_with(factory, schema=schema)
    except Exception as exc:  # the team's code: its failure is a reason on the record, not a crash
        raise TrainingError(f"model.estimator '{path}' raised {one_line(exc)}") from None
    if not (callable(getattr(estimator, "fit", None)) and callable(getattr(estimator, "predict", None))):
        raise TrainingError(f"model.estimator '{path}' returned a {type(estimator).__name__}, not an unfitted "
                            "estimator with fit and predict")
    return estimator


def is_training_function(function: Callable[..., Any]) -> bool:
    """A training function takes the training rows themselves (a parameter named `train_frame`); a
    factory takes nothing or `schema` and returns an estimator for retrainer to fit."""
    try:
        return "train_frame" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _searched(estimator: BaseEstimator, settings: TrainingSettings, inputs: pd.DataFrame,
              targets: pd.Series) -> tuple[BaseEstimator, dict[str, str] | None]:
    """With `training.search`: the best candidate of scikit-learn's successive halving, cross-validated
    within these (training) rows and refitted on all of them, and what was chosen (parameter: value, as
    text, and its cross-validated score); else the estimator as it is, unfitted, and None."""
    search = settings.search
    if search is None:
        return estimator, None
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401 (scikit-learn's opt-in)
    from sklearn.model_selection import HalvingRandomSearchCV

    searcher = HalvingRandomSearchCV(estimator, search.parameters, n_candidates=search.candidates, cv=search.folds,
                                     scoring=search.scoring, random_state=settings.seed, refit=True, error_score="raise")
    try:
        with warnings.catch_warnings():
            # "The total space of parameters is smaller than n_iter": a small grid is searched whole, as asked.
            warnings.filterwarnings("ignore", message="The total space of parameters", category=UserWarning)
            searcher.fit(inputs, targets)
    except Exception as exc:  # a misspelt parameter or an impossible value: say which, in one line
        raise TrainingError(f"training.search: {one_line(exc)}") from None
    chosen = {name: str(value) for name, value in searcher.best_params_.items()}
    chosen["cv_score"] = f"{float(searcher.best_score_):.6g}"
    return searcher.best_estimator_, chosen


def _fitted(name: str, schema: BatchSchema, settings: TrainingSettings, train_part: pd.DataFrame,
            valid_inputs: pd.DataFrame) -> tuple[Any, Any, dict[str, str] | None]:
    """(fitted model, its predictions on the validation rows) for `model.estimator` `name`: a built-in
    recipe or a factory fitted here on the feature frame, or the team's training function called with the
    training rows (features and target, never the validation rows or the gate's holdout). The team's
    code failing anywhere is a TrainingError naming the step."""
    inputs, targets = feature_frame(train_part, schema), target_values(train_part, schema)
    if not is_import_path(name):
        estimator, chosen = _searched(build_estimator(name, schema, settings.seed), settings, inputs, targets)
        if chosen is None:
            estimator.fit(inputs, targets)
        return estimator, estimator.predict(valid_inputs), chosen
    function = _team_function(name)
    chosen = None
    if is_training_function(function):
        try:
            # The rows as every model sees them: features converted, classes as text, quantities as floats.
            model = call_with(function, train_frame=inputs.assign(**{schema.target: targets}), schema=schema,
                              settings=settings)
        except Exception as exc:
            raise TrainingError(f"model.estimator '{name}' raised {one_line(exc)}") from None
        if not callable(getattr(model, "predict", None)):
            raise TrainingError(f"model.estimator '{name}' returned a {type(model).__name__}, not a fitted model "
                                "with predict")
    else:
        model, chosen = _searched(_user_estimator(name, function, schema), settings, inputs, targets)
        try:
            if chosen is None:
                model.fit(inputs, targets)
        except Exception as exc:
            raise TrainingError(f"model.estimator '{name}': fit raised {one_line(exc)}") from None
    try:
        return model, model.predict(valid_inputs), chosen
    except Exception as exc:
        raise TrainingError(f"model.estimator '{name}': predict raised {one_line(exc)}") from None


@dataclass
class TrainedModel:
    """A fitted pipeline with the metric it scored on its own validation rows and the row counts
    of both parts; a classifier's confidence on the validation rows too."""

    pipeline: BaseEstimator
    estimator: str
    validation_metric: float
    train_rows: int
    validation_rows: int
    # On the validation rows, for calibrating the model's confidence (classifiers only):
    # the top-class probability of each prediction and whether it was right.
    validation_confidence: np.ndarray | None = None
    validation_right: np.ndarray | None = None
    # The validation metric's standard error: how far it may be from the model's true one by chance.
    validation_std_error: float | None = None
    # With training.search: the hyperparameters chosen (as text) and their cross-validated score.
    search: dict[str, str] | None = None
    # Each feature's share of the metric lost when it is shuffled, on the validation rows (core.importance).
    importance: dict[str, float] | None = None


def labelled_rows(frame: pd.DataFrame, schema: BatchSchema) -> pd.DataFrame:
    """The rows of `frame` with a target value (none when the target column is missing)."""
    if schema.target not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[schema.target].notna()]


def train(frame: pd.DataFrame, schema: BatchSchema, estimator: str | None, settings: TrainingSettings,
          metric: MetricSpec | None = None) -> TrainedModel:
    """Fit on the labelled rows of `frame`, keeping a validation share for the model's own `metric` (the
    task's default when None)."""
    data = labelled_rows(frame, schema)
    if len(data) < 20:
        raise TrainingError(f"only {len(data)} labelled rows to train on; need at least 20")
    y = target_values(data, schema)
    stratify = None
    if schema.task == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            raise TrainingError(f"the target '{schema.target}' has a single class ({counts.index[0]}) in the window")
        stratify = y if counts.min() >= 2 else None
    train_part, valid_part = train_test_split(
        data, test_size=settings.validation_fraction, random_state=settings.seed,
        stratify=stratify,
    )
    valid_inputs, valid_targets = feature_frame(valid_part, schema), target_values(valid_part, schema)
    name = estimator or DEFAULT_ESTIMATOR
    pipeline, predictions, chosen = _fitted(name, schema, settings, train_part, valid_inputs)
    _check_count(f"model.estimator '{name}'", predictions, valid_inputs)
    return _validated(pipeline, name, schema, valid_inputs, valid_targets, predictions, len(train_part), chosen,
                      metric, settings.seed)


def _check_count(what: str, predictions: Any, inputs: pd.DataFrame) -> None:
    if len(predictions) != len(inputs):
        raise TrainingError(f"{what} predicted {len(predictions)} values for {len(inputs)} rows")


def _validated(model: Any, name: str, schema: BatchSchema, inputs: pd.DataFrame, targets: pd.Series,
               predictions: Any, train_rows: int, search: dict[str, str] | None = None,
               metric: MetricSpec | None = None, seed: int = 0) -> TrainedModel:
    """A fitted model with what its validation rows say of it: the metric and its standard error, a
    classifier's confidence and whether it was right (for calibrating estimated performance), and which
    features it leans on (`core.importance`)."""
    spec = metric or primary_metric(schema.task)
    outputs = model_outputs(model, inputs, schema.task, predictions)
    confidence = right = None
    if outputs.probabilities is not None:
        confidence = outputs.probabilities.max(axis=1)
        right = np.asarray(targets, dtype=object) == outputs.predictions
    value = measure(spec, schema.task, targets, outputs)
    if not np.isfinite(value):
        raise TrainingError(f"{spec.name} cannot be measured on the {len(inputs)} validation rows "
                            "(a single class, or no probabilities)")
    return TrainedModel(
        pipeline=model,
        estimator=name,
        validation_metric=value,
        train_rows=train_rows,
        validation_rows=len(inputs),
        validation_confidence=confidence,
        validation_right=right,
        validation_std_error=metric_std_error(schema.task, targets, outputs, spec),
        search=search,
        importance=_importance(model, inputs, targets, schema, spec, seed),
    )


def _importance(model: Any, inputs: pd.DataFrame, targets: pd.Series, schema: BatchSchema, spec: MetricSpec,
                seed: int) -> dict[str, float] | None:
    """The model's importance shares on its validation rows; None when it cannot be measured (a team's model
    that fails on shuffled rows it predicted unshuffled): a hint for people, never a reason to refuse a model."""
    try:
        return importance_shares(model, inputs, targets, schema.task, spec, seed)
    except Exception:  # the team's code, on rows it was never meant to see: no hint rather than no model
        return None


def model_outputs(model: Any, inputs: pd.DataFrame, task: Task, predictions: Any = None) -> Outputs:
    """What `model` says about `inputs`: its predictions (given, or made here) and, for a classifier with
    predict_proba, its class probabilities in the order of its classes."""
    said = np.asarray(model.predict(inputs) if predictions is None else predictions,
                      dtype=object if task == "classification" else np.float64)
    if task != "classification" or not hasattr(model, "predict_proba"):
        return Outputs(said)
    return Outputs(said, np.asarray(model.predict_proba(inputs), dtype=np.float64), tuple(model.classes_))


class EncodedLabels(ClassifierMixin, BaseEstimator):
    """A classifier that takes classes as 0..k-1 only (XGBoost), fitted on the window's text classes:
    encodes them for it, and predicts them back as text."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def fit(self, X: Any, y: Any) -> EncodedLabels:  # noqa: N803 (scikit-learn's names)
        """Fit the wrapped model on the classes as codes, in sorted order."""
        self.classes_, codes = np.unique(np.asarray(y, dtype=object).astype(str), return_inverse=True)
        self.classes_ = self.classes_.astype(object)
        self.model.fit(X, codes)
        return self

    def predict(self, X: Any) -> npt.NDArray[np.object_]:  # noqa: N803
        """The wrapped model's predicted codes, as classes."""
        predicted: npt.NDArray[np.object_] = self.classes_[np.asarray(self.model.predict(X), dtype=int)]
        return predicted

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        """The wrapped model's class probabilities, in the order of `classes_`."""
        return self.model.predict_proba(X)


class LabelsAsText(BaseEstimator):
    """A classifier fitted elsewhere on labels that are not text (0/1, say): predicts its classes as the
    pipeline compares them, as text, like every model retrainer trains. `retrainer adopt` wraps such a
    model; its probabilities are the wrapped model's own."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def fit(self, X: Any, y: Any) -> LabelsAsText:  # noqa: N803 (scikit-learn's names)
        """Refit the wrapped model (retrainer's own retrains train new models instead)."""
        self.model.fit(X, y)
        return self

    def predict(self, X: Any) -> npt.NDArray[np.object_]:  # noqa: N803
        """The wrapped model's predictions, as text."""
        return labels_as_text(self.model.predict(X))

    @available_if(lambda self: hasattr(self.model, "predict_proba"))  # type: ignore[untyped-decorator]
    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        """The wrapped model's class probabilities, in the order of `classes_`."""
        return self.model.predict_proba(X)

    @property
    def classes_(self) -> npt.NDArray[np.object_]:
        """The wrapped model's classes, as text."""
        return labels_as_text(self.model.classes_)


def measured(model: Any, frame: pd.DataFrame, schema: BatchSchema, estimator: str,
             metric: MetricSpec | None = None) -> TrainedModel:
    """A model fitted elsewhere (`retrainer adopt`), measured on the labelled rows of `frame` as a trained
    model is on its validation rows: its metric there becomes its validation metric. Raises TrainingError
    when it cannot predict them."""
    data = labelled_rows(frame, schema)
    if len(data) < 20:
        raise TrainingError(f"only {len(data)} labelled rows to measure the model on; need at least 20")
    inputs, targets = feature_frame(data, schema), target_values(data, schema)
    try:
        predictions = model.predict(inputs)
    except Exception as exc:
        raise TrainingError(f"{estimator}: predict raised {one_line(exc)} on the reference data") from None
    _check_count(estimator, predictions, inputs)
    if schema.task == "classification" and not all(isinstance(c, str) for c in getattr(model, "classes_", ())):
        # Classes as the pipeline compares them (text) wherever the model serves: records, gate, drift.
        model = LabelsAsText(model)
        predictions = labels_as_text(predictions)
    return _validated(model, estimator, schema, inputs, targets, predictions, len(data), metric=metric)


def train_baseline(frame: pd.DataFrame, schema: BatchSchema) -> BaseEstimator:
    """The sanity floor a challenger must beat: the window's class prior (classification) or mean."""
    data = labelled_rows(frame, schema)
    model: BaseEstimator = (DummyClassifier(strategy="prior") if schema.task == "classification"
                            else DummyRegressor(strategy="mean"))
    model.fit(feature_frame(data, schema), target_values(data, schema))
    return model


def split_holdout(frame: pd.DataFrame, schema: BatchSchema, rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, holdout): `rows` random labelled rows that no model is trained on, and the other labelled rows."""
    data = labelled_rows(frame, schema)
    if rows >= len(data):
        return data.iloc[0:0], data
    rest, holdout = train_test_split(data, test_size=rows, random_state=seed)
    return rest, holdout


def plan_holdout(labelled: Sequence[tuple[int, int]], fraction: float, min_rows: int,
                 max_share: float = 0.5) -> dict[int, int]:
    """How many labelled rows of each batch the gate holds out: (batch index, its labelled rows) of the
    batches the holdout may come from, newest first, in; rows per batch out.

    `fraction` of the newest batch, as always; when that is fewer than `min_rows` (small batches), the
    same fraction of the next newest batches too, as many as it takes; and when those run out, a larger
    share of each, newest first, up to `max_share` (the rest is still trained on). The caller lists only
    batches no model trained on, so the rows are fresh for both champion and challenger. Whatever is
    planned may still fall short of `min_rows`: the gate then names that as its reason.
    """
    plan: dict[int, int] = {}
    total = 0
    for index, rows in labelled:
        if plan and total >= min_rows:
            break
        plan[index] = min(rows, math.ceil(fraction * rows))
        total += plan[index]
    for index, rows in labelled:
        if total >= min_rows:
            break
        extra = min(max(0, math.ceil(max_share * rows) - plan.get(index, 0)), min_rows - total)
        if extra:
            plan[index] = plan.get(index, 0) + extra
            total += extra
    return plan


def pick_candidate(task: Task, y_true: npt.ArrayLike, predictions: Sequence[npt.ArrayLike | Outputs],
                   metric: MetricSpec | None = None) -> tuple[int, list[float]]:
    """Which of several challengers scores best on `metric` (the task's default when None) on the same
    held-out rows, and every score. A tie keeps the earlier candidate: the caller lists the one it prefers
    on a tie first."""
    metric = metric or primary_metric(task)
    scores = [measure(metric, task, y_true, as_outputs(task, predicted)) for predicted in predictions]
    best = 0
    for index, value in enumerate(scores):
        if (value > scores[best]) if metric.higher_is_better else (value < scores[best]):
            best = index
    return best, scores


def latest_window(stored: Sequence[int], window_batches: int) -> tuple[int, int] | None:
    """The newest accepted batch and the first of the window of `window_batches` ending there, for a
    retrain that no batch's change asked for (the staleness check); None with nothing stored."""
    if not stored:
        return None
    last = max(stored)
    return last, max(min(stored), last - window_batches + 1)
