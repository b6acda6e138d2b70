"""A team's own model for retrainer (`model.estimator: retrainer_example_model:make_estimator`).

retrainer calls `make_estimator(schema=...)` whenever it trains (the first champion, every
retrain, the full-window comparison) and fits what it returns on the accepted training window's
feature frame: the columns of `schema.features`, as delivered (with `training.search` in the config,
scikit-learn's successive halving tunes it first, by cross-validation inside that window). Everything
else — the window, the holdout the gate judges on, registration, promotion — stays retrainer's.
`SignedLog` is the team's own class: a registered model holding it is only loaded because the config
lists it in `model.trusted_types`. The gate and the policy judge the team's business metric,
`retrainer_example_model.metrics:cost_per_reading` (`model.metric`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder


class SignedLog(TransformerMixin, BaseEstimator):
    """Feature engineering: sign(x)·log1p(|x|), which tames heavy-tailed sensor and money columns."""

    def fit(self, X: Any, y: Any = None) -> SignedLog:
        """Nothing to learn; remembers the column count, as scikit-learn's transformers do."""
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The transformed columns, as floats."""
        values = np.asarray(X, dtype=float)
        return np.sign(values) * np.log1p(np.abs(values))


def make_estimator(schema: Any) -> Pipeline:
    """The team's pipeline: categories as ordinal codes, numbers through SignedLog, then LightGBM with
    the team's hyperparameters (a classifier or a regressor by `schema.task`)."""
    prepare = ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                        encoded_missing_value=np.nan), list(schema.categorical)),
         ("numeric", SignedLog(), list(schema.numeric))],
        verbose_feature_names_out=False,
    )
    # One thread: retraining shares the machine with the cycle; verbose -1: no C++ chatter in the logs.
    tuned = {"n_estimators": 150, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 20,
             "subsample": 0.9, "subsample_freq": 1, "random_state": 7, "n_jobs": 1, "verbose": -1}
    model = LGBMClassifier(**tuned) if schema.task == "classification" else LGBMRegressor(**tuned)
    return Pipeline([("prepare", prepare), ("model", model)])
