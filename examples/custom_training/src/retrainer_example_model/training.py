"""The same model as a *training function* (`model.estimator: retrainer_example_model.training:train_with_early_stopping`):
the team's code does the fitting itself, here to choose the number of trees by early stopping.

retrainer calls it with the training rows of the accepted window only (`train_frame`: the feature
columns as the model sees them and the target; never the window's validation rows or the gate's
holdout), the schema, and the config's `training` section; it returns a fitted model with `predict`
(and `predict_proba`). Everything after — the validation metric, registration, the gate — is retrainer's.
"""

from __future__ import annotations

from typing import Any

import lightgbm
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from retrainer_example_model import make_estimator

# The newest fifth of the training rows decides when to stop adding trees (rows arrive oldest first).
STOPPING_SHARE = 0.2
MAX_TREES = 600


def train_with_early_stopping(train_frame: Any, schema: Any, settings: Any) -> Pipeline:
    """Feature engineering and LightGBM as in `make_estimator`, its number of trees chosen by early stopping
    on the newest training rows, then refitted on all of them with that many trees."""
    features, target = list(schema.features), train_frame[schema.target]
    cut = int(len(train_frame) * (1 - STOPPING_SHARE))
    pipeline = make_estimator(schema)
    pipeline.set_params(model__n_estimators=MAX_TREES, model__random_state=settings.seed)
    prepare = clone(pipeline.named_steps["prepare"]).fit(train_frame[features].iloc[:cut])
    probe = clone(pipeline.named_steps["model"])
    probe.fit(prepare.transform(train_frame[features].iloc[:cut]), target.iloc[:cut],
              eval_set=[(prepare.transform(train_frame[features].iloc[cut:]), target.iloc[cut:])],
              callbacks=[lightgbm.early_stopping(25, verbose=False)])
    # Refitted without the callback's bookkeeping: the stored model holds plain, trusted types only.
    pipeline.set_params(model__n_estimators=max(int(probe.best_iteration_ or MAX_TREES), 10))
    return pipeline.fit(train_frame[features], target)
