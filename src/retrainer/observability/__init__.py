"""Observability: a quiet, local environment for the stack, stage timings, metrics pushed to a
Prometheus Pushgateway, and one structured JSON log line per cycle."""

from retrainer.observability.logs import cycle_log_line, write_cycle_log
from retrainer.observability.prometheus import PushError, cycle_samples, push_cycle
from retrainer.observability.runtime import QUIET_ENVIRONMENT, StageTimer, prepare_environment

__all__ = [
    "QUIET_ENVIRONMENT",
    "PushError",
    "StageTimer",
    "cycle_log_line",
    "cycle_samples",
    "prepare_environment",
    "push_cycle",
    "write_cycle_log",
]
