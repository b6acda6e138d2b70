"""The gate's fairness check: a per-group rate for each model on the held-out rows, and whether the challenger
widens the largest gap between groups (`promotion.fairness`). A challenger better on average can be worse for a
group; this is where the pipeline refuses it, with the groups in the report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from retrainer.config import FairnessSettings

# The rows each rate is computed on (which the group's minimum applies to) and what it counts there.
_RATE_ROWS = {
    "selection_rate": "all",
    "accuracy": "all",
    "recall": "positive",
    "false_positive_rate": "negative",
    "precision": "predicted_positive",
}


def groups_of(values: npt.ArrayLike) -> Iterator[tuple[Any, npt.NDArray[np.bool_]]]:
    """Each value of a column (missing values aside, in text order) with the mask of its rows: the groups
    of `promotion.fairness` and the slices of `promotion.slices` alike."""
    keys = np.asarray(values, dtype=object)
    for value in sorted({v for v in keys if not pd.isna(v)}, key=str):
        yield value, keys == value


def group_rates(metric: str, y: npt.NDArray[Any], predictions: npt.NDArray[Any], groups: npt.ArrayLike,
                positive: Any, min_rows: int) -> dict[str, float]:
    """Each group's rate (groups with fewer than `min_rows` rows to compute it on are left out), by group value
    as text."""
    actual, said = y == positive, predictions == positive
    rates: dict[str, float] = {}
    for value, members in groups_of(groups):
        rows = {"all": members, "positive": members & actual, "negative": members & ~actual,
                "predicted_positive": members & said}[_RATE_ROWS[metric]]
        if int(rows.sum()) < min_rows:
            continue
        if metric == "accuracy":
            rate = float(np.mean(predictions[rows] == y[rows]))
        elif metric == "precision":
            rate = float(np.mean(actual[rows]))
        else:  # selection rate, recall, false positive rate: how often the positive class is said
            rate = float(np.mean(said[rows]))
        rates[str(value)] = rate
    return rates


def gap(rates: dict[str, float]) -> float:
    """The largest difference between two groups' rates (0 with fewer than two groups)."""
    return max(rates.values()) - min(rates.values()) if len(rates) >= 2 else 0.0


def fairness_checks(y: npt.NDArray[Any], champion: npt.NDArray[Any], challenger: npt.NDArray[Any],
                    columns: dict[str, npt.ArrayLike | None], settings: FairnessSettings,
                    positive: Any) -> list[tuple[str, bool, str]]:
    """(name, passed, detail) per group column: the challenger's largest gap at most the champion's plus
    `max_gap_increase`. The detail lists each group's rate for both models."""
    checks = []
    for column in settings.groups:
        name = f"fairness: {settings.metric} gap across {column}"
        values = columns.get(column)
        if values is None:
            # A misspelt or dropped column must not quietly switch the check off.
            checks.append((name, False, f"'{column}' is not a column of the held-out rows (promotion.fairness.groups)"))
            continue
        before = group_rates(settings.metric, y, champion, values, positive, settings.min_group_rows)
        after = group_rates(settings.metric, y, challenger, values, positive, settings.min_group_rows)
        judged = sorted(set(before) & set(after))
        before, after = {k: before[k] for k in judged}, {k: after[k] for k in judged}
        if len(judged) < 2:
            checks.append((name, True, f"fewer than two groups of '{column}' have {settings.min_group_rows}+ rows "
                                       "to compare: nothing to judge"))
            continue
        widened = gap(after) - gap(before)
        groups = ", ".join(f"{k} {before[k]:.3f} → {after[k]:.3f}" for k in judged)
        checks.append((name, widened <= settings.max_gap_increase + 1e-12,
                       f"gap {gap(before):.3f} → {gap(after):.3f} ({widened:+.3f}; at most "
                       f"+{settings.max_gap_increase:g}); {groups}"))
    return checks
