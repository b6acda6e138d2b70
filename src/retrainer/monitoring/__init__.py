"""Monitoring signals: drift (Evidently), estimated performance, out-of-distribution rows, champion age."""

from retrainer.monitoring.drift import (
    DriftResult,
    FeatureDrift,
    PresetDrift,
    check_stattests,
    compute_drift,
    preset_dataset_drift,
    render_drift_report,
    report_wanted,
)
from retrainer.monitoring.novelty import NoveltyModel, OodResult, fit_novelty, score_novelty
from retrainer.monitoring.performance import Estimate, PerformanceEstimator, estimate_accuracy, fit_estimator
from retrainer.monitoring.staleness import champion_age_days

__all__ = [
    "DriftResult",
    "Estimate",
    "FeatureDrift",
    "NoveltyModel",
    "OodResult",
    "PerformanceEstimator",
    "PresetDrift",
    "champion_age_days",
    "check_stattests",
    "compute_drift",
    "estimate_accuracy",
    "fit_estimator",
    "fit_novelty",
    "preset_dataset_drift",
    "render_drift_report",
    "report_wanted",
    "score_novelty",
]
