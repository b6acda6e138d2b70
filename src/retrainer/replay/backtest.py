"""Replay a folder of batch files through the production flows, in file-name order.

The first K readable batches train the first champion and draft the suite; every later batch
goes through the same `monitor-batch` flow a deployment runs. With no config file everything
is inferred from the first batches and written to `<workdir>/retrainer.yaml`.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import ENV_PREFIX, RetrainerConfig, Task, build_config, load_config, write_config
from retrainer.core.records import BatchRecord, write_timeline
from retrainer.core.schema import resolve_model_settings
from retrainer.data.batches import BatchReadError, list_batch_files, read_batch
from retrainer.errors import UserError

OnRecord = Callable[[BatchRecord, int, int], None]


class BacktestError(UserError):
    """The backtest cannot start; the message says why."""


@dataclass
class BacktestResult:
    """One backtest: its decision records, the config it wrote, its work dir, and its timings in seconds
    (in all, the first champion with the flows' start-up, and summed per stage over every batch)."""

    records: list[BatchRecord]
    config_path: Path
    workdir: Path
    seconds: float
    startup_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # The files in replay order: the first champion's, then the replayed ones.
    initial_paths: list[Path] = field(default_factory=list)
    replayed_paths: list[Path] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "model"


def prepare_workdir(workdir: Path) -> None:
    """A backtest starts from an empty work dir: it replays history, it does not continue one."""
    if (workdir / "retrainer.yaml").exists() or (workdir / "models").exists():
        raise BacktestError(f"{workdir} already holds a backtest or deployment; choose an empty --workdir")
    workdir.mkdir(parents=True, exist_ok=True)


def backtest_config(
    target: str, task: Task | None, name: str, workdir: Path, config_path: Path | None
) -> RetrainerConfig:
    """The user's config (if any) with storage redirected into the work dir, or one built from flags."""
    if config_path is not None:
        base = load_config(config_path)
        # A replay never touches the config's own store or registry: it gets its own in the work dir.
        data = base.model_dump(mode="json", exclude={"storage": {"workdir", "suites_dir"},
                                                      "mlflow": {"tracking_uri", "artifact_location"}})
        data["model"]["target"] = target or data["model"]["target"]
        if task:
            data["model"]["task"] = task
    else:
        data = {"model": {"name": name, "target": target, "task": task}}
    # Suites of a replay live in its work dir, never in the repository's expectations/.
    data["storage"] = {"workdir": str(workdir), "suites_dir": str(workdir / "expectations")}
    return build_config(data, workdir, source=str(config_path or "backtest settings"))


def split_initial(paths: list[Path], k: int, target: str) -> tuple[list[Path], list[Path], pd.DataFrame]:
    """The first k readable, labelled files (the champion's training data) and the files still to replay."""
    initial: list[Path] = []
    frames: list[pd.DataFrame] = []
    rest: list[Path] = []
    seen: list[str] = []  # the columns of the first readable file, for the error below
    for path in paths:
        if len(initial) < k:
            try:
                frame = read_batch(path)
            except BatchReadError:
                frame = None
            if frame is not None and not seen:
                seen = [str(column) for column in frame.columns]
            # An unreadable or unlabelled file is replayed after the init like any batch,
            # where it gets its reason in the timeline.
            if frame is not None and target in frame.columns and frame[target].notna().any():
                frames.append(frame)
                initial.append(path)
                continue
        rest.append(path)
    if len(initial) < k:
        columns = (f"; '{target}' is not a column of {paths[0].parent.name}/ (its columns: {', '.join(seen)})"
                   if seen and not frames and target not in seen else "")
        raise BacktestError(
            f"need {k} readable batch file(s) with target '{target}' to train the first champion; "
            f"found {len(initial)}{columns}"
        )
    return initial, rest, pd.concat(frames, ignore_index=True)


# Settings never written to a config file (they may carry tokens): they reach the replay's flows,
# which reload the written config, through the environment of this process instead.
SECRET_SETTINGS = (("notifications", "webhook_url"), ("observability", "pushgateway_url"))


@contextmanager
def _secrets_in_environment(config: RetrainerConfig) -> Iterator[None]:
    added: list[str] = []
    for section, name in SECRET_SETTINGS:
        value = getattr(getattr(config, section), name)
        key = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
        if value and key not in os.environ:
            added.append(key)
            os.environ[key] = value
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def run_backtest(
    batch_dir: Path,
    target: str,
    task: Task | None = None,
    init_batches: int = 1,
    config_path: Path | None = None,
    workdir: Path | None = None,
    json_out: Path | None = None,
    on_record: OnRecord | None = None,
    name: str | None = None,
    verbose: bool = False,
    orchestrated: bool = True,
) -> BacktestResult:
    """Replay `batch_dir` in file-name order: the first `init_batches` readable, labelled files train the
    first champion, every later file goes through the monitoring cycle; returns the records and timings.

    The work dir (default `./retrainer-backtest-<folder>`) must not hold a backtest or deployment yet;
    `json_out` receives the timeline, `on_record` each record with its position and the total. Without
    `orchestrated` the cycle runs as plain steps, without Prefect. Raises BacktestError when the folder
    holds no more files than `init_batches`, or too few of them can train the first champion."""
    started = time.perf_counter()
    paths = list_batch_files(batch_dir)
    if len(paths) <= init_batches:
        raise BacktestError(f"{batch_dir}: {len(paths)} batch file(s); need more than --init-batches {init_batches}")
    workdir = (workdir or Path.cwd() / f"retrainer-backtest-{_slug(batch_dir.name)}").resolve()
    prepare_workdir(workdir)
    config = backtest_config(target, task, name or _slug(batch_dir.resolve().name), workdir, config_path)
    initial, rest, initial_frame = split_initial(paths, init_batches, config.model.target)
    config = config.model_copy(update={"model": resolve_model_settings(initial_frame, config.model)})
    resolved_config = workdir / "retrainer.yaml"
    write_config(config, resolved_config)

    # Imports Prefect when it starts the local API: after the config above, before any flow.
    from retrainer.pipeline.local_api import prepare_local_run

    prepare_local_run(workdir / "prefect", verbose=verbose)
    # Imports Prefect: after the environment. Without `orchestrated`, the same cycle runs as plain
    # steps (`pipeline.cycle.PLAIN`): the same decisions, without Prefect's ~0.7 s per cycle.
    from retrainer.pipeline import cycle
    from retrainer.pipeline.flows import initialise_champion, monitor_batch

    initialise: Callable[[str, list[str]], list[dict[str, Any]]] = initialise_champion
    monitor: Callable[[str, str], dict[str, Any]] = monitor_batch
    if not orchestrated:
        initialise = functools.partial(cycle.initialise, cycle.PLAIN)
        monitor = functools.partial(cycle.monitor, cycle.PLAIN)

    total = len(paths)
    records: list[BatchRecord] = []
    with _secrets_in_environment(config):
        init_started = time.perf_counter()
        for raw in initialise(str(resolved_config), [str(p) for p in initial]):
            records.append(BatchRecord.model_validate(raw))
            if on_record:
                on_record(records[-1], len(records), total)
        startup = time.perf_counter() - init_started
        for path in rest:
            records.append(BatchRecord.model_validate(monitor(str(resolved_config), str(path))))
            if on_record:
                on_record(records[-1], len(records), total)
    if json_out is not None:
        write_timeline(records, json_out)
    stages: dict[str, float] = {}
    for record in records:
        for stage, seconds in record.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    return BacktestResult(records, resolved_config, workdir, time.perf_counter() - started, startup, stages,
                          initial, rest)
