"""Permutation importance per version (scikit-learn's own), and the features whose role moved between two."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from retrainer.core.importance import importance_shares, importance_shift, top_features
from retrainer.core.metrics import metric_spec, primary_metric


def _rows(seed: int, leaning_on: str, rows: int = 1500) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in ("a", "b", "c", "d")})
    labels = np.where(frame[leaning_on] + 0.2 * rng.normal(size=rows) > 0, "1", "0")
    return frame, pd.Series(labels, index=frame.index)


def _shares(leaning_on: str) -> dict[str, float]:
    inputs, labels = _rows(0, leaning_on)
    model = LogisticRegression().fit(inputs, labels)
    return importance_shares(model, inputs, labels, "classification", primary_metric("classification"), seed=0)


def test_a_model_leans_on_the_feature_that_decides_its_labels() -> None:
    shares = _shares("b")
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert max(shares, key=lambda name: shares[name]) == "b"
    assert shares["b"] > 0.9
    assert top_features(shares, 2).startswith("b ")


def test_the_shift_names_the_features_whose_role_changed_and_nothing_else() -> None:
    """From a champion leaning on 'a' to a challenger leaning on 'c': 'a' and 'c' are named, with ranks and
    shares; the two features neither uses are not (their ranks among zeros are noise)."""
    shifts = importance_shift(_shares("a"), _shares("c"))
    assert {shift.feature for shift in shifts} == {"a", "c"}
    described = {shift.feature: shift.describe() for shift in shifts}
    assert described["c"].startswith("c: rank ")
    assert " → 1, share 0.0" in described["c"]
    assert importance_shift(_shares("a"), _shares("a")) == []


def test_a_lower_is_better_metric_still_counts_a_loss_as_importance() -> None:
    inputs, labels = _rows(1, "d")
    model = LogisticRegression().fit(inputs, labels)
    shares = importance_shares(model, inputs, labels, "classification", metric_spec("classification", "log_loss"),
                               seed=0)
    assert max(shares, key=lambda name: shares[name]) == "d"
