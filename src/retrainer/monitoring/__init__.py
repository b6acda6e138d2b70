"""Monitoring signals: drift (Evidently), champion age."""

from retrainer.monitoring.drift import DriftResult, FeatureDrift, compute_drift, render_drift_report, report_wanted
from retrainer.monitoring.staleness import champion_age_days

__all__ = ["DriftResult", "FeatureDrift", "champion_age_days", "compute_drift", "render_drift_report", "report_wanted"]
