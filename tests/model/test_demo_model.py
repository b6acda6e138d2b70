"""The model tier: behavioural checks of the model the demo trains (the example config's estimator on
the scenario's first day), in the style of CheckList — minimum performance, invariance and direction.

The scenario's concept is known (retrainer.replay.scenario.make_batch): before the maintenance change,
failures rise with vibration and temperature and do not depend on the site or on humidity. A model
that learnt something else (a leak, a broken pipeline, a wrong column order) fails here, without any
service running."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.config import TrainingSettings, load_config
from retrainer.core.metrics import score
from retrainer.core.schema import (
    BatchSchema,
    feature_frame,
    resolve_model_settings,
    schema_from_settings,
    target_values,
)
from retrainer.core.training import TrainedModel, train, train_baseline
from retrainer.replay.scenario import SCRIPT, SITES, make_batch

pytestmark = pytest.mark.model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pump-failure.yaml"


@pytest.fixture(scope="module")
def demo() -> tuple[TrainedModel, BatchSchema, pd.DataFrame]:
    config = load_config(EXAMPLE)
    rng = np.random.default_rng(7)
    first = make_batch(SCRIPT[0], 0, 3000, rng)
    later = make_batch(SCRIPT[1], 1, 3000, rng)  # a stable day the model never saw
    schema = schema_from_settings(resolve_model_settings(first, config.model))
    return train(first, schema, config.model.estimator, TrainingSettings()), schema, later


def _failure_probability(model: TrainedModel, schema: BatchSchema, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.pipeline.predict_proba(feature_frame(frame, schema)))[:, 1]


def test_minimum_performance_on_an_unseen_stable_day(demo: tuple[TrainedModel, BatchSchema, pd.DataFrame]) -> None:
    """Well above the class prior, and close to what it measured on its own validation rows."""
    model, schema, later = demo
    accuracy = score("classification", target_values(later, schema),
                     model.pipeline.predict(feature_frame(later, schema)))
    prior = train_baseline(later, schema)
    floor = score("classification", target_values(later, schema), prior.predict(feature_frame(later, schema)))
    assert accuracy >= 0.75, accuracy
    assert accuracy >= floor + 0.1, (accuracy, floor)
    assert abs(accuracy - model.validation_metric) <= 0.05, (accuracy, model.validation_metric)


def test_invariance_to_what_failures_do_not_depend_on(demo: tuple[TrainedModel, BatchSchema, pd.DataFrame]) -> None:
    """Moving every pump to another site, or shifting humidity a little, flips few predictions."""
    model, schema, later = demo
    before = model.pipeline.predict(feature_frame(later, schema))
    moved = later.assign(site=later["site"].map({s: SITES[(i + 1) % len(SITES)] for i, s in enumerate(SITES)}))
    humid = later.assign(humidity_pct=later["humidity_pct"] + 3.0)
    for changed, what in ((moved, "site"), (humid, "humidity +3 points")):
        after = model.pipeline.predict(feature_frame(changed, schema))
        flipped = float(np.mean(np.asarray(before) != np.asarray(after)))
        assert flipped <= 0.05, f"{what}: {flipped:.1%} of predictions flipped"


def test_direction_more_vibration_or_heat_means_more_failures(demo: tuple[TrainedModel, BatchSchema, pd.DataFrame]) -> None:
    """Raising what drives failures raises the predicted failure probability, on average and for most rows."""
    model, schema, later = demo
    base = _failure_probability(model, schema, later)
    for column, step in (("vibration_mm_s", 2.0), ("temperature_c", 8.0)):
        raised = _failure_probability(model, schema, later.assign(**{column: later[column] + step}))
        assert raised.mean() > base.mean() + 0.05, (column, base.mean(), raised.mean())
        assert np.mean(raised >= base - 1e-9) >= 0.9, column
