"""The shadow verdict (`core.shadow`): the gate's paired test over the shadow batches' rows, promoting only a
challenger better by the margin, significantly."""

from __future__ import annotations

import numpy as np

from retrainer.config import PromotionSettings
from retrainer.core.metrics import Outputs, metric_spec
from retrainer.core.shadow import shadow_verdict


def _labels(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(["0", "1"], size=rows)


def _right_on(y: np.ndarray, share: float, seed: int) -> Outputs:
    """Predictions right on about `share` of the rows."""
    wrong = np.random.default_rng(seed).random(len(y)) > share
    return Outputs(np.where(wrong, np.where(y == "1", "0", "1"), y).astype(object))


def test_a_challenger_better_on_the_shadow_rows_is_promoted_with_its_figures() -> None:
    y = _labels(800)
    verdict = shadow_verdict("classification", metric_spec("classification", "accuracy"), y, _right_on(y, 0.70, 1),
                             _right_on(y, 0.85, 2), PromotionSettings(shadow_batches=2), batches=2)
    assert verdict.promote
    assert verdict.comparison.rows == 800
    assert verdict.comparison.ci_low > 0
    assert verdict.reason().startswith("shadow over 2 labelled batch(es), 800 rows: accuracy champion 0.6838, "
                                       "challenger 0.8525, interval [+0.1")
    assert verdict.reason().endswith("the challenger wins")


def test_a_challenger_no_better_or_short_of_the_margin_is_not_promoted_and_says_why() -> None:
    y = _labels(800)
    spec = metric_spec("classification", "accuracy")
    worse = shadow_verdict("classification", spec, y, _right_on(y, 0.85, 1), _right_on(y, 0.70, 2),
                           PromotionSettings(), batches=2)
    assert not worse.promote
    assert "not better (✗ accuracy improvement ≥ margin: -0.1" in worse.reason()
    # Better, but not by the margin the gate asks for: the same semantics here.
    short = shadow_verdict("classification", spec, y, _right_on(y, 0.80, 1), _right_on(y, 0.83, 2),
                           PromotionSettings(margin=0.1), batches=2)
    assert not short.promote
    assert "margin 0.1" in short.reason()


def test_too_few_shadow_rows_prove_nothing() -> None:
    y = _labels(12)
    verdict = shadow_verdict("classification", metric_spec("classification", "accuracy"), y, _right_on(y, 0.5, 1),
                             Outputs(y.astype(object)), PromotionSettings(), batches=2)
    assert not verdict.promote
    assert [c.name for c in verdict.checks if not c.passed] == ["shadow rows", "95% interval above zero"]


def test_a_regression_is_judged_on_its_error() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 500)
    verdict = shadow_verdict("regression", metric_spec("regression", "rmse"), y, Outputs(y + rng.normal(0, 1, 500)),
                             Outputs(y + rng.normal(0, 0.3, 500)), PromotionSettings(), batches=3)
    assert verdict.promote
    assert verdict.comparison.challenger_metric < verdict.comparison.champion_metric
