"""The team's business metric (`model.metric: retrainer_example_model.metrics:cost_per_reading`).

retrainer calls it with the true classes, the predicted classes (both as text, as the pipeline compares
them) and the class probabilities (None for a regression) of some rows, and judges models by what it
returns: the gate on the held-out rows (with a paired bootstrap over them), the policy on each batch's
labels against the champion's own validation figure. `model.metric_higher_is_better: false` tells it
that a cost is better low.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# What an error costs the team, per reading: a missed failure (an unplanned outage) against a false
# alarm (a technician's visit to a healthy pump): an outage costs three visits.
MISSED_FAILURE = 3.0
FALSE_ALARM = 1.0


def cost_per_reading(y_true: Any, y_pred: Any, y_proba: Any = None) -> float:
    """The mean cost of the model's errors per reading (failure is class "1")."""
    failed = np.asarray(y_true).astype(str) == "1"
    flagged = np.asarray(y_pred).astype(str) == "1"
    return float(np.mean(MISSED_FAILURE * (failed & ~flagged) + FALSE_ALARM * (~failed & flagged)))
