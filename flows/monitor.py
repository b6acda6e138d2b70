"""Deployment entrypoints named in prefect.yaml. The flows are defined once, in the package
(`retrainer.flows`), so the CLI and the worker image run the same code."""

from retrainer.flows import initialise_champion, join_late_labels, monitor_batch, retrain_evaluate_promote

__all__ = ["initialise_champion", "join_late_labels", "monitor_batch", "retrain_evaluate_promote"]
