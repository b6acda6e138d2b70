"""Many models or segments monitored in one flow run, fanned out with Prefect's Dask task runner.

Here a `LocalCluster` of worker processes (one thread each: validation, scoring and drift hold the
GIL, so processes are what run in parallel), on loopback; in production the address of any Dask
cluster. Needs the `dask` extra (prefect-dask).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrainer.errors import UserError


class FleetError(UserError):
    """The fleet cannot run; the message says why."""


def dask_task_runner(address: str | None = None, workers: int | None = None) -> Any:
    """A DaskTaskRunner on an existing cluster (`address`) or a new local one with `workers` processes
    (default: one per core)."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise FleetError("fanning out needs prefect-dask: pip install 'retrainer[dask]'") from None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers or os.cpu_count() or 1, "threads_per_worker": 1, "processes": True,
        "host": "127.0.0.1", "dashboard_address": None, "silence_logs": logging.CRITICAL,
        # Each worker imports the stack (~10 s) when it starts, all at once, not in its first cycle.
        "preload": ["retrainer.pipeline.flows"],
    })


def run_fleet(jobs: Sequence[tuple[Path | str, Path | str]], address: str | None = None,
              workers: int | None = None) -> list[dict[str, Any]]:
    """One cycle per (config file, batch file), in one `monitor-fleet` flow run; one result per job, in order:
    `{"config", "batch", "record", "seconds"}`, or `{"config", "batch", "error"}` for a cycle that failed."""
    from retrainer.pipeline.flows import monitor_fleet

    pairs = [(str(Path(config).resolve()), str(Path(batch).resolve())) for config, batch in jobs]
    flow = monitor_fleet.with_options(task_runner=dask_task_runner(address, workers))
    return list(flow(pairs))
