"""Estimated performance when labels are missing, from the champion's calibrated confidence.

The idea behind confidence-based performance estimation (CBPE): if a classifier's confidence
is calibrated — of the predictions made with confidence 0.8, 80 % are right — then the mean
calibrated confidence over a batch is the expected accuracy on it, and the spread of the
per-row chances of being right gives its uncertainty. The calibration is fitted once per model
version, at training time, on the validation rows the model did not train on (isotonic
regression of "prediction was right" on the top-class probability), and stored with the
version as plain JSON breakpoints.

Limits worth knowing: the estimate follows covariate shift (inputs moving to where the model is
unsure) but cannot see concept drift (the same inputs now meaning another label); only
labels show that. Regression models give no confidence, so no estimate is made for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression

ESTIMATOR_KIND = "top-class-confidence-isotonic"
# Below this many validation rows the calibration curve is mostly noise.
MIN_CALIBRATION_ROWS = 30


@dataclass(frozen=True)
class PerformanceEstimator:
    """A fitted calibration: top-class probability → chance the prediction is right."""

    confidence: list[float]
    chance_right: list[float]
    calibration_rows: int

    def to_dict(self) -> dict[str, Any]:
        """The calibration as the JSON document stored with the model version."""
        return {"kind": ESTIMATOR_KIND, "metric": "accuracy", "confidence": self.confidence,
                "chance_right": self.chance_right, "calibration_rows": self.calibration_rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceEstimator | None:
        """The calibration of a stored document; None when the document is of another kind."""
        if data.get("kind") != ESTIMATOR_KIND:
            return None
        return cls(list(data["confidence"]), list(data["chance_right"]), int(data["calibration_rows"]))

    def chances(self, top_probability: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Each prediction's chance of being right, from its top-class probability."""
        return np.interp(np.asarray(top_probability, float), self.confidence, self.chance_right)


@dataclass(frozen=True)
class Estimate:
    """An estimated metric on a batch: its value, its standard deviation and the rows it was estimated on."""

    metric: str
    value: float
    # Standard deviation of the estimate from the rows' own uncertainty (Poisson-binomial).
    std: float
    rows: int


def fit_estimator(top_probability: npt.ArrayLike, right: npt.ArrayLike) -> PerformanceEstimator | None:
    """Calibrate on held-out rows: the model's top-class probability and whether it was right."""
    x = np.asarray(top_probability, float)
    y = np.asarray(right, float)
    if len(x) < MIN_CALIBRATION_ROWS:
        return None
    calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return PerformanceEstimator(
        confidence=[float(v) for v in calibration.X_thresholds_],
        chance_right=[float(v) for v in calibration.y_thresholds_],
        calibration_rows=len(x),
    )


def estimate_accuracy(estimator: PerformanceEstimator, top_probability: npt.ArrayLike) -> Estimate | None:
    """Expected accuracy on a batch without labels, with its standard deviation."""
    chances = estimator.chances(top_probability)
    if len(chances) == 0:
        return None
    n = len(chances)
    return Estimate("accuracy", float(chances.mean()), float(np.sqrt(np.sum(chances * (1 - chances))) / n), n)
