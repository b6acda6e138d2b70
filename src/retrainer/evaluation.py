"""The champion/challenger gate: pure, computed predictions in, a verdict with every check out.

Both models are scored on the *same* held-out rows. The improvement of the primary metric
comes with a paired bootstrap confidence interval (scipy), so one lucky number on a small
holdout does not promote a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from retrainer.config import PromotionSettings, Task
from retrainer.metrics import metric_from_losses, primary_metric, row_losses


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    metric_name: str
    champion_metric: float
    challenger_metric: float
    improvement: float
    ci_low: float
    ci_high: float
    churn: float
    holdout_rows: int
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"gate {'PASSED' if self.passed else 'FAILED'} on {self.holdout_rows} held-out rows: "
            f"{self.metric_name} champion {self.champion_metric:.4f}, challenger {self.challenger_metric:.4f}"
        ]
        lines += [f"- [{'x' if c.passed else ' '}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


def _finite(task: Task, predictions: npt.ArrayLike) -> bool:
    if task == "classification":
        return bool(all(p is not None and p == p for p in np.asarray(predictions, dtype=object)))
    return bool(np.all(np.isfinite(np.asarray(predictions, dtype=float))))


def _improvement(task: Task, champion_losses: npt.NDArray[np.float64], challenger_losses: npt.NDArray[np.float64],
                 axis: int = -1) -> npt.NDArray[np.float64]:
    """Challenger minus champion on the metric's own scale, positive when the challenger is better."""
    champion = metric_from_losses(task, champion_losses, axis=axis)
    challenger = metric_from_losses(task, challenger_losses, axis=axis)
    return challenger - champion if primary_metric(task).higher_is_better else champion - challenger


def gate(
    task: Task,
    y_true: npt.ArrayLike,
    champion_predictions: npt.ArrayLike,
    challenger_predictions: npt.ArrayLike,
    settings: PromotionSettings,
    seed: int = 0,
) -> GateVerdict:
    spec = primary_metric(task)
    y = np.asarray(y_true, dtype=object if task == "classification" else float)
    champion_pred = np.asarray(champion_predictions, dtype=object if task == "classification" else float)
    challenger_pred = np.asarray(challenger_predictions, dtype=object if task == "classification" else float)
    if not (len(y) == len(champion_pred) == len(challenger_pred)) or len(y) == 0:
        raise ValueError("the gate needs the same non-empty held-out rows for both models")

    finite = _finite(task, challenger_pred)
    checks = [Check("finite outputs", finite, "no NaN/inf in the challenger's predictions")]
    champion_losses = row_losses(task, y, champion_pred)
    champion_metric = float(metric_from_losses(task, champion_losses))
    enough_rows = len(y) >= settings.min_holdout_rows
    checks.append(Check("holdout size", enough_rows, f"{len(y)} rows (minimum {settings.min_holdout_rows})"))
    if finite:
        challenger_losses = row_losses(task, y, challenger_pred)
        challenger_metric = float(metric_from_losses(task, challenger_losses))
        improvement = float(_improvement(task, champion_losses, challenger_losses))
    else:
        challenger_metric, improvement = float("nan"), float("nan")
    if finite and enough_rows:
        interval = stats.bootstrap(
            (champion_losses, challenger_losses),
            lambda a, b, axis=-1: _improvement(task, a, b, axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=settings.bootstrap_resamples,
            confidence_level=settings.confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        ci_low, ci_high = float(interval.low), float(interval.high)
    else:
        # No interval can be trusted: the check below fails rather than promote on one number.
        ci_low = ci_high = float("nan")

    checks.append(
        Check(
            f"{spec.name} improvement ≥ margin",
            finite and improvement >= settings.margin and improvement > 0,
            f"{improvement:+.4f} (margin {settings.margin:g})",
        )
    )
    checks.append(
        Check(
            f"{settings.confidence:.0%} interval above zero",
            bool(ci_low > 0),
            f"[{ci_low:+.4f}, {ci_high:+.4f}] (paired bootstrap, {settings.bootstrap_resamples} resamples)",
        )
    )
    if task == "classification":
        churn = float(np.mean(champion_pred != challenger_pred))
    elif not finite:
        churn = float("nan")
    else:
        scale = float(np.std(y)) or 1.0
        churn = float(np.mean(np.abs(champion_pred - challenger_pred) > 0.1 * scale))
    return GateVerdict(
        passed=all(check.passed for check in checks),
        metric_name=spec.name,
        champion_metric=champion_metric,
        challenger_metric=challenger_metric,
        improvement=improvement,
        ci_low=ci_low,
        ci_high=ci_high,
        churn=churn,
        holdout_rows=len(y),
        checks=checks,
    )
