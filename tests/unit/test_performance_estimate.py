"""Estimated accuracy without labels (retrainer.monitoring.performance): calibrated confidence."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from retrainer.monitoring.performance import (
    ESTIMATOR_KIND,
    MIN_CALIBRATION_ROWS,
    Estimate,
    PerformanceEstimator,
    estimate_accuracy,
    fit_estimator,
)

N = 20_000


def _confidences_and_outcomes(rng: np.random.Generator, n: int, low: float,
                              overconfidence: float = 0.0) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Top-class probabilities p ~ U(low, 1) and whether each prediction was right ~ Bernoulli(p - overconfidence)."""
    confidence = rng.uniform(low, 1.0, n)
    right = rng.random(n) < confidence - overconfidence
    return confidence, right


def test_too_few_calibration_rows_give_no_estimator() -> None:
    """With fewer validation rows than MIN_CALIBRATION_ROWS no calibration is fitted; at the minimum one is."""
    rng = np.random.default_rng(0)
    confidence, right = _confidences_and_outcomes(rng, MIN_CALIBRATION_ROWS, 0.5)
    assert fit_estimator(confidence[:-1], right[:-1]) is None
    assert fit_estimator([], []) is None
    estimator = fit_estimator(confidence, right)
    assert estimator is not None
    assert estimator.calibration_rows == MIN_CALIBRATION_ROWS


def test_estimate_matches_realized_accuracy_for_a_calibrated_model() -> None:
    """For a model whose confidence is honest, the estimate on a fresh batch is within 3 std of the true accuracy."""
    rng = np.random.default_rng(1)
    estimator = fit_estimator(*_confidences_and_outcomes(rng, N, 0.5))
    assert estimator is not None
    confidence, right = _confidences_and_outcomes(rng, N, 0.5)
    estimate = estimate_accuracy(estimator, confidence)
    assert estimate is not None
    assert estimate.metric == "accuracy"
    assert estimate.rows == N
    assert 0 < estimate.std < 0.01
    assert abs(estimate.value - right.mean()) < 3 * estimate.std
    # an honest model: the raw mean confidence is about right too
    assert estimate.value == pytest.approx(0.75, abs=0.01)


def test_calibration_corrects_an_overconfident_model() -> None:
    """A model right 20 points less often than it claims is estimated close to its true accuracy, unlike its raw
    mean confidence."""
    rng = np.random.default_rng(2)
    estimator = fit_estimator(*_confidences_and_outcomes(rng, N, 0.6, overconfidence=0.2))
    assert estimator is not None
    confidence, right = _confidences_and_outcomes(rng, N, 0.6, overconfidence=0.2)
    estimate = estimate_accuracy(estimator, confidence)
    assert estimate is not None
    realized = float(right.mean())
    assert realized == pytest.approx(0.6, abs=0.01)
    assert abs(estimate.value - realized) < 3 * estimate.std
    # the uncalibrated confidence is ~0.8: far outside the estimate's uncertainty
    assert abs(float(confidence.mean()) - realized) > 0.15
    assert abs(float(confidence.mean()) - realized) > 30 * estimate.std


def test_estimate_follows_inputs_moving_to_where_the_model_is_unsure() -> None:
    """A batch of low-confidence predictions is estimated lower than a batch of confident ones."""
    rng = np.random.default_rng(3)
    estimator = fit_estimator(*_confidences_and_outcomes(rng, N, 0.5))
    assert estimator is not None
    unsure = estimate_accuracy(estimator, rng.uniform(0.5, 0.6, 1000))
    confident = estimate_accuracy(estimator, rng.uniform(0.9, 1.0, 1000))
    assert unsure is not None
    assert confident is not None
    assert unsure.value == pytest.approx(0.55, abs=0.05)
    assert confident.value == pytest.approx(0.95, abs=0.05)


def test_estimate_and_std_by_hand_on_a_known_calibration() -> None:
    """The estimate is the mean chance of being right and its std the root of the summed p(1-p) over n."""
    estimator = PerformanceEstimator(confidence=[0.5, 1.0], chance_right=[0.5, 1.0], calibration_rows=100)
    estimate = estimate_accuracy(estimator, [0.5, 1.0])
    assert estimate == Estimate("accuracy", 0.75, 0.25, 2)
    # between the breakpoints the chance is interpolated, beyond them clipped
    assert estimator.chances([0.75, 0.2, 1.5]).tolist() == [0.75, 0.5, 1.0]


def test_an_empty_batch_gives_no_estimate() -> None:
    """A batch with no predictions gives no estimate rather than a NaN."""
    estimator = PerformanceEstimator([0.5, 1.0], [0.5, 1.0], 100)
    assert estimate_accuracy(estimator, []) is None


def test_std_shrinks_with_the_square_root_of_the_batch_size() -> None:
    """Four times the rows halves the estimate's uncertainty; a hundred times divides it by ten."""
    rng = np.random.default_rng(4)
    estimator = fit_estimator(*_confidences_and_outcomes(rng, N, 0.5))
    assert estimator is not None
    confidence = rng.uniform(0.5, 1.0, 100)
    small = estimate_accuracy(estimator, confidence)
    repeated = estimate_accuracy(estimator, np.tile(confidence, 4))
    assert small is not None
    assert repeated is not None
    assert repeated.std == pytest.approx(small.std / 2)
    large = estimate_accuracy(estimator, rng.uniform(0.5, 1.0, 10_000))
    assert large is not None
    assert small.std / large.std == pytest.approx(10, rel=0.2)


def test_estimator_round_trips_through_a_plain_dict_and_json() -> None:
    """A fitted calibration stored as JSON with a model version reads back as the same calibration."""
    rng = np.random.default_rng(5)
    estimator = fit_estimator(*_confidences_and_outcomes(rng, 2000, 0.5))
    assert estimator is not None
    data = estimator.to_dict()
    assert data["kind"] == ESTIMATOR_KIND
    assert data["metric"] == "accuracy"
    assert data["calibration_rows"] == 2000
    restored = PerformanceEstimator.from_dict(json.loads(json.dumps(data)))
    assert restored == estimator
    assert restored is not None
    probe = rng.uniform(0.5, 1.0, 50)
    assert restored.chances(probe).tolist() == estimator.chances(probe).tolist()


@pytest.mark.parametrize("data", [{"kind": "something-else", "confidence": [0.5], "chance_right": [0.5],
                                   "calibration_rows": 40}, {}])
def test_an_unknown_estimator_kind_reads_as_no_estimator(data: dict[str, object]) -> None:
    """A stored calibration of another kind (or none) is ignored instead of misread."""
    assert PerformanceEstimator.from_dict(data) is None
