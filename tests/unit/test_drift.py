"""Drift with Evidently's stat tests: what counts towards the drifted share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer.config import DriftSettings, ModelSettings
from retrainer.core.schema import infer_schema
from retrainer.monitoring.drift import compute_drift


def test_a_column_that_grows_with_time_drifts_without_counting_and_a_real_shift_counts() -> None:
    """Four years on, `year` drifts (it is scored and shown) but counts neither in the share nor as a drifted
    feature; a shift of `income` beside it does. Unchanged columns are the reference's own values."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"year": 2015 + rng.integers(0, 2, 1000), "income": rng.normal(0, 1, 1000),
                              "region": rng.choice(["n", "s"], 1000), "y": rng.integers(0, 2, 1000)})
    schema = infer_schema(reference, ModelSettings(target="y"))
    settings = DriftSettings()
    later = reference.assign(year=reference["year"] + 4)
    result = compute_drift(reference, later, schema, settings, 0.3, growing=("year",))
    assert next(f for f in result.features if f.column == "year").drifted
    assert (result.drifted_features, result.share, result.dataset_drift) == ([], 0.0, False)
    shifted = compute_drift(reference, later.assign(income=later["income"] + 2), schema, settings, 0.3,
                            growing=("year",))
    assert (shifted.drifted_features, shifted.share, shifted.dataset_drift) == (["income"], 0.5, True)
    # Without knowing that the year grows, the next year is dataset drift by itself.
    assert compute_drift(reference, later, schema, settings, 0.3).drifted_features == ["year"]
