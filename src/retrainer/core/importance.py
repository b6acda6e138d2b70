"""Which features a model leans on, and how that moved between two versions.

A version's importance is scikit-learn's `permutation_importance` on its own validation rows, scored on the
model's metric: how much the metric worsens when one feature's values are shuffled. Kept as shares (the
drops, negatives as 0, divided by their sum), so that versions trained on different windows compare. When
performance falls without feature drift, the first question is which features the new model leans on
differently; the gate report and the retrain's record name them (`importance_shift`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrainer.config import Task
from retrainer.core.metrics import PROBABILITY_METRICS, MetricSpec, as_outputs, measure

# Rows and shuffles per feature: enough to rank features for a person, at a small part of a retrain
# (3 shuffles × 50 features is 150 predictions of 500 rows).
IMPORTANCE_ROWS = 500
IMPORTANCE_REPEATS = 3
# A feature is named as moved when its share changed by at least this much, or its rank by at least 2.
MIN_SHARE_MOVE = 0.05
MIN_RANK_MOVE = 2


def importance_shares(model: Any, inputs: pd.DataFrame, targets: pd.Series, task: Task, metric: MetricSpec,
                      seed: int) -> dict[str, float]:
    """Each feature's share of the metric the model loses when that feature is shuffled (they sum to 1,
    or are all 0 when no feature matters), on at most IMPORTANCE_ROWS of the given rows."""
    from sklearn.inspection import permutation_importance

    from retrainer.core.training import model_outputs

    if len(inputs) > IMPORTANCE_ROWS:
        chosen = np.sort(np.random.default_rng(seed).choice(len(inputs), IMPORTANCE_ROWS, replace=False))
        inputs, targets = inputs.iloc[chosen], targets.iloc[chosen]
    sign = 1.0 if metric.higher_is_better else -1.0
    # Class decisions alone where the metric reads nothing else: one model evaluation per shuffle, not two.
    decisions_only = metric.function is None and metric.name not in PROBABILITY_METRICS

    def score(estimator: Any, features: pd.DataFrame, truth: pd.Series) -> float:
        outputs = (as_outputs(task, estimator.predict(features)) if decisions_only
                   else model_outputs(estimator, features, task))
        return sign * measure(metric, task, truth, outputs)

    result = permutation_importance(model, inputs, targets, scoring=score, n_repeats=IMPORTANCE_REPEATS,
                                    random_state=seed)
    drops = np.clip(np.nan_to_num(np.asarray(result.importances_mean, dtype=float)), 0.0, None)
    total = float(drops.sum())
    return {str(name): (float(drop) / total if total > 0 else 0.0) for name, drop in zip(inputs.columns, drops,
                                                                                          strict=True)}


def top_features(shares: dict[str, float], count: int = 5) -> str:
    """The `count` features the model leans on most, with their shares: "n0 0.42, c1 0.21, n3 0.10"."""
    ranked = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:count]
    return ", ".join(f"{name} {share:.2f}" for name, share in ranked)


@dataclass(frozen=True)
class FeatureShift:
    """One feature's place in the champion's and the challenger's importance (rank 1 = leaned on most)."""

    feature: str
    champion_rank: int
    challenger_rank: int
    champion_share: float
    challenger_share: float

    def describe(self) -> str:
        """For a person: "n3: rank 6 → 1, share 0.02 → 0.48"."""
        return (f"{self.feature}: rank {self.champion_rank} → {self.challenger_rank}, "
                f"share {self.champion_share:.2f} → {self.challenger_share:.2f}")


def importance_shift(champion: dict[str, float], challenger: dict[str, float], count: int = 3) -> list[FeatureShift]:
    """The features whose share or rank moved most from the champion to the challenger (at most `count`,
    largest share move first; only moves of at least MIN_SHARE_MOVE in share or MIN_RANK_MOVE in rank)."""
    features = sorted(set(champion) | set(challenger))
    rank_before, rank_after = _ranks(champion, features), _ranks(challenger, features)
    moves = [FeatureShift(name, rank_before[name], rank_after[name], champion.get(name, 0.0),
                          challenger.get(name, 0.0)) for name in features]
    # A rank among features neither model uses is noise: a rank move counts for a feature one of them leans on.
    moved = [m for m in moves if abs(m.challenger_share - m.champion_share) >= MIN_SHARE_MOVE
             or (abs(m.challenger_rank - m.champion_rank) >= MIN_RANK_MOVE
                 and max(m.champion_share, m.challenger_share) >= MIN_SHARE_MOVE)]
    moved.sort(key=lambda m: (-abs(m.challenger_share - m.champion_share),
                              -abs(m.challenger_rank - m.champion_rank), m.feature))
    return moved[:count]


def _ranks(shares: dict[str, float], features: list[str]) -> dict[str, int]:
    ordered = sorted(features, key=lambda name: (-shares.get(name, 0.0), name))
    return {name: position for position, name in enumerate(ordered, start=1)}
