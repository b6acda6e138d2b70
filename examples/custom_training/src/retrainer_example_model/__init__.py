"""A team's own model for retrainer (`model.estimator: retrainer_example_model:make_estimator`).

retrainer calls `make_estimator(schema=...)` whenever it trains (the first champion, every
retrain, the full-window comparison) and fits what it returns on the accepted training window's
feature frame: the columns of `schema.features`, as delivered. Everything else — the window, the
holdout the gate judges on, registration, promotion — stays retrainer's. `SignedLog` is the team's
own class: a registered model holding it is only loaded because the config lists it in
`model.trusted_types`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
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
    """The team's pipeline: categories as ordinal codes, numbers through SignedLog, then gradient
    boosting with the team's tuned hyperparameters; a classifier or a regressor by `schema.task`."""
    prepare = ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                        encoded_missing_value=np.nan), list(schema.categorical)),
         ("numeric", SignedLog(), list(schema.numeric))],
        verbose_feature_names_out=False,
    )
    tuned = {"learning_rate": 0.08, "max_leaf_nodes": 15, "l2_regularization": 1.0, "random_state": 7}
    model = (HistGradientBoostingClassifier(**tuned) if schema.task == "classification"
             else HistGradientBoostingRegressor(**tuned))
    categorical = [True] * len(schema.categorical) + [False] * len(schema.numeric)
    model.set_params(categorical_features=categorical or None)
    return Pipeline([("prepare", prepare), ("model", model)])
