"""The champion/challenger gate: pure, computed predictions in, a verdict with every check out.

Both models are scored on the *same* held-out rows. The improvement of the primary metric
comes with a paired bootstrap confidence interval (scipy), so one lucky number on a small
holdout does not promote a model. Beyond the average, when their inputs are given: no slice
(a value of a configured column, with enough rows) may get worse by more than a tolerance;
the share of predictions that change (churn) stays under a cap; prediction latency and
serialized size stay within a ratio of the champion's; and the challenger must beat a simple
baseline model trained on the same window — a sanity floor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from retrainer.config import PromotionSettings, Task
from retrainer.core.fairness import fairness_checks, groups_of
from retrainer.core.metrics import (
    MetricSpec,
    Outputs,
    as_outputs,
    measure,
    paired_improvement,
    positive_label,
    primary_metric,
)


@dataclass(frozen=True)
class Check:
    """One check of the gate: its name, whether it passed, and the figures behind it."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class ModelCosts:
    """What serving a model costs, measured on the holdout: seconds per 1,000 rows, bytes serialized."""

    champion_seconds_per_1k: float
    challenger_seconds_per_1k: float
    champion_bytes: int
    challenger_bytes: int


@dataclass(frozen=True)
class GateVerdict:
    """The gate's verdict on a challenger: passed only when every check did.

    `improvement` and its interval `ci_low`..`ci_high` are challenger minus champion on the metric's
    own scale, positive when the challenger is better; NaN when the challenger's outputs are not finite
    (the interval also when the holdout is too small). `churn` is the share of predictions that change
    (regression: by more than a tenth of the target's standard deviation)."""

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
    # Which batches the held-out rows came from, for a person ("21 of 'w05', 9 of 'w04'").
    holdout_source: str = ""
    # The features the challenger leans on differently from the champion (`core.importance`), for a person:
    # "rpm: rank 9 → 1, share 0.00 → 0.43". A hint where a concept changed, not a check.
    importance_shift: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain data (its checks as dicts), for records and reports."""
        return asdict(self)

    def summary(self) -> str:
        """The verdict for a person: a headline with both metrics and the checks that failed, then one line per
        check, marked ✓ or ✗."""
        source = f" ({self.holdout_source})" if self.holdout_source else ""
        failed = [c.name for c in self.checks if not c.passed]
        lines = [
            f"gate {'PASSED' if self.passed else 'FAILED'} on {self.holdout_rows} held-out rows{source}: "
            f"{self.metric_name} champion {_figure(self.champion_metric)}, challenger {_figure(self.challenger_metric)}"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        ]
        # Marks that read the same in a terminal and in the MLflow UI's markdown (where "[x]" renders as a
        # plain bullet), and that plain fonts have: a server's browser or terminal often has no emoji font.
        lines += [check_line(c.passed, c.name, c.detail) for c in self.checks]
        if self.importance_shift:
            # A paragraph of its own: markdown (the MLflow UI) would run it into the last check's bullet.
            lines += ["", "features the challenger leans on differently (permutation importance): "
                      + "; ".join(self.importance_shift)]
        return "\n".join(lines)


def check_line(passed: bool, name: str, detail: str) -> str:
    """One gate check for a person, the same in the gate report, the Prefect artifact and the MLflow UI."""
    return f"- {'✓' if passed else '✗'} {name}: {detail}"


def _figure(value: float, sign: bool = False) -> str:
    """A figure for a person: NaN (nothing could be measured) reads as 'n/a', never 'nan'."""
    if value != value:
        return "n/a"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def serves(predictions: npt.NDArray[Any], rows: int) -> bool:
    """Whether a model's predictions on `rows` rows could be served: one per row, none NaN or infinite."""
    if len(predictions) != rows:
        return False
    return not (predictions.dtype.kind in "fc" and not np.isfinite(predictions).all())


def _finite(task: Task, predictions: npt.ArrayLike) -> bool:
    if task == "classification":
        return bool(all(p is not None and p == p for p in np.asarray(predictions, dtype=object)))
    return bool(np.all(np.isfinite(np.asarray(predictions, dtype=float))))


def _better_by(spec: MetricSpec, champion: float, challenger: float) -> float:
    """Challenger minus champion on the metric's own scale, positive when the challenger is better."""
    return challenger - champion if spec.higher_is_better else champion - challenger


def _slice_checks(spec: MetricSpec, task: Task, y: npt.NDArray[Any], champion: Outputs, challenger: Outputs,
                  slices: dict[str, npt.ArrayLike | None], settings: PromotionSettings) -> list[Check]:
    """One check per configured column: no value with enough rows gets worse beyond the tolerance."""
    checks = []
    for column, values in slices.items():
        if values is None:
            # A misspelt or dropped column must not quietly switch its check off.
            checks.append(Check(f"no regression on slices of {column}", False,
                                f"'{column}' is not a column of the held-out rows (promotion.slices)"))
            continue
        worst: tuple[float, str] | None = None
        judged = 0
        for value, rows in groups_of(values):
            if int(rows.sum()) < settings.min_slice_rows:
                continue
            before = measure(spec, task, y[rows], champion.take(rows))
            after = measure(spec, task, y[rows], challenger.take(rows))
            if not (np.isfinite(before) and np.isfinite(after)):
                continue  # a metric this slice cannot give (ROC AUC of one class) judges nothing
            judged += 1
            change = _better_by(spec, before, after)
            if worst is None or change < worst[0]:
                worst = (change, f"{column}={value}: {spec.name} {before:.4f} -> {after:.4f}")
        # A worsening of exactly the tolerance is allowed, whatever floating point makes of it.
        passed = worst is None or worst[0] >= -settings.slice_tolerance - 1e-12
        detail = (f"no value of '{column}' has {settings.min_slice_rows}+ rows" if worst is None
                  else f"worst {worst[1]} ({worst[0]:+.4f}; tolerance {settings.slice_tolerance:g}, "
                       f"{judged} slice(s) judged)")
        checks.append(Check(f"no regression on slices of {column}", passed, detail))
    return checks


def _fairness(task: Task, spec: MetricSpec, y: npt.NDArray[Any], champion: Outputs, challenger: Outputs,
              finite: bool, groups: dict[str, npt.ArrayLike | None], settings: PromotionSettings) -> list[Check]:
    """promotion.fairness's checks (`core.fairness`) on the class the metric calls positive; a regression or
    unservable outputs fail them with why."""
    assert settings.fairness is not None
    name = f"fairness: {settings.fairness.metric} gaps"
    if task != "classification":
        return [Check(name, False, "promotion.fairness judges class decisions; this model is a regression")]
    if not finite:
        return [Check(name, False, "not measured: the challenger's predictions are not all finite")]
    checks = fairness_checks(y, champion.predictions, challenger.predictions, groups, settings.fairness,
                             positive_label(spec, y, champion))
    return [Check(*check) for check in checks]


def _cost_checks(costs: ModelCosts, settings: PromotionSettings) -> list[Check]:
    latency = costs.challenger_seconds_per_1k / max(costs.champion_seconds_per_1k, 1e-9)
    size = costs.challenger_bytes / max(costs.champion_bytes, 1)
    return [
        Check("prediction latency", latency <= settings.max_latency_ratio,
              f"{costs.challenger_seconds_per_1k * 1000:.1f} ms vs {costs.champion_seconds_per_1k * 1000:.1f} ms "
              f"per 1,000 rows ({latency:.2f}×, cap {settings.max_latency_ratio:g}×)"),
        Check("serialized size", size <= settings.max_size_ratio,
              f"{costs.challenger_bytes / 1e6:.2f} MB vs {costs.champion_bytes / 1e6:.2f} MB "
              f"({size:.2f}×, cap {settings.max_size_ratio:g}×)"),
    ]


@dataclass(frozen=True)
class PairedComparison:
    """Both models' metric on the same rows, the challenger's improvement (positive: better) and its paired
    bootstrap interval, and the checks they make: the improvement at least the margin, the interval above
    zero (and the margin). NaN where a figure cannot be had (outputs not finite, too few rows)."""

    champion_metric: float
    challenger_metric: float
    improvement: float
    ci_low: float
    ci_high: float
    rows: int
    checks: list[Check]

    @property
    def passed(self) -> bool:
        """Whether the challenger is better by the margin, significantly."""
        return all(check.passed for check in self.checks)


def paired_comparison(task: Task, spec: MetricSpec, y: npt.NDArray[Any], champion: Outputs, challenger: Outputs,
                      settings: PromotionSettings, seed: int, rows_name: str, size_check: str) -> PairedComparison:
    """The gate's judgement of the metric on rows both models scored (the holdout; the shadow batches' rows):
    `rows_name` says which in the checks' words, `size_check` names the check of their number."""
    finite = _finite(task, challenger.predictions)
    champion_metric = measure(spec, task, y, champion)
    enough_rows = len(y) >= settings.min_holdout_rows
    checks = [Check(size_check, enough_rows, f"{len(y)} rows (minimum {settings.min_holdout_rows})")]
    if finite:
        challenger_metric = measure(spec, task, y, challenger)
        improvement = _better_by(spec, champion_metric, challenger_metric)
    else:
        challenger_metric, improvement = float("nan"), float("nan")
    # A metric these rows cannot give (ROC AUC on rows of one class) proves nothing either way.
    measurable = finite and bool(np.isfinite(improvement))
    if measurable and enough_rows:
        # Row positions resampled, both models scored on the same resample: a paired bootstrap.
        interval = stats.bootstrap(
            (np.arange(len(y)),),
            paired_improvement(spec, task, y, champion, challenger),
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
            measurable and improvement >= settings.margin and improvement > 0,
            f"{improvement:+.4f} (margin {settings.margin:g})" if measurable
            else "not measured: the challenger's predictions are not all finite" if not finite
            else f"not measured: {spec.name} cannot be computed on these {rows_name} rows",
        )
    )
    checks.append(
        Check(
            # Significant, and significantly at least the margin: one lucky number is not enough.
            f"{settings.confidence:.0%} interval above zero" + (" and the margin" if settings.margin > 0 else ""),
            bool(ci_low > 0 and ci_low >= settings.margin),
            f"[{ci_low:+.4f}, {ci_high:+.4f}] (paired bootstrap, {settings.bootstrap_resamples} resamples)"
            if measurable and enough_rows else
            (f"no interval: {len(y)} {rows_name} rows are too few to trust one (minimum {settings.min_holdout_rows}, "
             "promotion.min_holdout_rows)" if measurable
             else "no interval: the challenger's predictions are not all finite" if not finite
             else f"no interval: {spec.name} cannot be computed on these {rows_name} rows"),
        )
    )
    return PairedComparison(champion_metric, challenger_metric, improvement, ci_low, ci_high, len(y), checks)


def gate(
    task: Task,
    y_true: npt.ArrayLike,
    champion_predictions: npt.ArrayLike | Outputs,
    challenger_predictions: npt.ArrayLike | Outputs,
    settings: PromotionSettings,
    seed: int = 0,
    slices: dict[str, npt.ArrayLike | None] | None = None,
    baseline_predictions: npt.ArrayLike | Outputs | None = None,
    costs: ModelCosts | None = None,
    holdout_source: str = "",
    metric: MetricSpec | None = None,
    groups: dict[str, npt.ArrayLike | None] | None = None,
) -> GateVerdict:
    """The verdict on a challenger, judged on `metric` (the task's default when None). Each model's
    predictions come alone or as Outputs with class probabilities (a metric such as ROC AUC needs them).
    `slices` and `groups` (promotion.fairness) map a column name to its values on the holdout rows;
    `baseline_predictions` are a simple model's on the same rows; `costs` are measured serving costs."""
    spec = metric or primary_metric(task)
    y = np.asarray(y_true, dtype=object if task == "classification" else float)
    champion, challenger = as_outputs(task, champion_predictions), as_outputs(task, challenger_predictions)
    champion_pred, challenger_pred = champion.predictions, challenger.predictions
    if not (len(y) == len(champion_pred) == len(challenger_pred)) or len(y) == 0:
        raise ValueError("the gate needs the same non-empty held-out rows for both models")
    others = [*(v for v in (slices or {}).values() if v is not None),
              *([] if baseline_predictions is None else [as_outputs(task, baseline_predictions).predictions])]
    if any(len(np.asarray(values, dtype=object)) != len(y) for values in others):
        raise ValueError("slice columns and baseline predictions must cover the same held-out rows")

    finite = _finite(task, challenger_pred)
    checks = [Check("finite outputs", finite, "no NaN/inf in the challenger's predictions")]
    judged = paired_comparison(task, spec, y, champion, challenger, settings, seed, "held-out", "holdout size")
    checks += judged.checks
    champion_metric, challenger_metric = judged.champion_metric, judged.challenger_metric
    if task == "classification":
        churn = float(np.mean(champion_pred != challenger_pred))
    elif not finite:
        churn = float("nan")
    else:
        scale = float(np.std(y)) or 1.0
        churn = float(np.mean(np.abs(champion_pred - challenger_pred) > 0.1 * scale))
    if settings.max_churn is not None:
        checks.append(Check("prediction churn", bool(churn <= settings.max_churn),
                            f"{churn:.1%} of predictions change (cap {settings.max_churn:.0%})"))
    if finite and slices:
        checks += _slice_checks(spec, task, y, champion, challenger, slices, settings)
    if baseline_predictions is not None:
        baseline_metric = measure(spec, task, y, as_outputs(task, baseline_predictions))
        # A constant baseline has no ROC AUC to speak of beyond 0.5 (NaN here only on one class): not judged.
        beats = finite and (not np.isfinite(baseline_metric) or _better_by(spec, baseline_metric, challenger_metric) > 0)
        checks.append(Check("beats the baseline", bool(beats),
                            f"{spec.name} {_figure(challenger_metric)} vs baseline {baseline_metric:.4f}"))
    if costs is not None:
        checks += _cost_checks(costs, settings)
    if settings.fairness is not None:
        checks += _fairness(task, spec, y, champion, challenger, finite, groups or {}, settings)
    return GateVerdict(
        passed=all(check.passed for check in checks),
        metric_name=spec.name,
        champion_metric=champion_metric,
        challenger_metric=challenger_metric,
        improvement=judged.improvement,
        ci_low=judged.ci_low,
        ci_high=judged.ci_high,
        churn=churn,
        holdout_rows=len(y),
        checks=checks,
        holdout_source=holdout_source,
    )
