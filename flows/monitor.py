"""Deployment entrypoints named in prefect.yaml. The flows are defined once, in the package
(`retrainer.pipeline.flows`), so the CLI, `retrainer serve` and the worker image run the same code."""

from retrainer.pipeline.flows import (
    initialise_champion,
    join_late_labels,
    monitor_batch,
    monitor_landing,
    retrain_evaluate_promote,
    retrain_on_request,
    staleness_check,
)

__all__ = ["initialise_champion", "join_late_labels", "monitor_batch", "monitor_landing", "retrain_evaluate_promote",
           "retrain_on_request", "staleness_check"]
