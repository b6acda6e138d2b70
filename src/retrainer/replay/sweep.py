"""The policy simulator behind `retrainer backtest --baselines` and `--sweep`.

`--baselines`: the configured policy's replay (the backtest itself, through the production
flows) beside the recipes of `retrainer.replay.baselines` on the same files, summarised per policy, with
a plot (PNG + HTML page) and a JSON document. `--sweep`: the configured policy replayed again for
each point of a small grid of its thresholds, to show the metric/retrain-count frontier. Sweep
points call the flows' tasks as plain functions (`retrainer.pipeline.cycle.PLAIN`): the decisions are the same
(benchmarks/orchestration_overhead.py checks it), without Prefect's ~0.7 s per cycle.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrainer.config import ConfigError, PolicySettings, RetrainerConfig, load_config, write_config
from retrainer.core.metrics import configured_metric
from retrainer.core.records import BatchRecord
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.baselines import Baseline, run_baselines
from retrainer.replay.comparison import (
    GroundTruth,
    PolicyRun,
    PolicySummary,
    check_ground_truth,
    pareto_frontier,
    run_from_records,
    summarise_run,
)
from retrainer.replay.plots import write_html, write_png
from retrainer.state.stores import AcceptedStore

CONFIGURED = "retrainer"


@dataclass
class Comparison:
    """The configured policy beside the baselines on one stream: each run and its summary, the batch
    order, the metric and which way is better, and the files written."""

    runs: list[PolicyRun]
    summaries: list[PolicySummary]
    order: list[str]
    metric_name: str
    higher_is_better: bool
    truth: GroundTruth | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self, policy: str) -> PolicySummary:
        """The summary of the policy named `policy`."""
        return next(s for s in self.summaries if s.policy == policy)


def scored_batches(records: Sequence[BatchRecord]) -> set[str]:
    """The batches every policy is judged on: accepted by the configured policy's suite, with labels."""
    return {r.batch for r in records if r.decision in ("none", "retrain") and r.metric is not None}


def configured_run(result: BacktestResult, policy: str = CONFIGURED) -> PolicyRun:
    """The backtest's own policy as a `PolicyRun`, read off its records; its seconds leave out the first
    champion and the flows' start-up."""
    config = load_config(result.config_path)
    accepted = set(AcceptedStore(config.storage.accepted_dir(config.model.name)).indices())
    return run_from_records(policy, result.records, accepted, config.training.window_batches,
                            result.seconds - result.startup_seconds)


def compare_policies(result: BacktestResult, baselines: Sequence[Baseline], out_dir: Path,
                     truth: GroundTruth | None = None, batch_dir: Path | None = None,
                     shadow: int | None = None) -> Comparison:
    """The backtest's own policy beside `baselines` on the same stream; writes policies.{json,png,html}. With
    `shadow` (and the stream's `batch_dir`), also the configured policy replayed with
    `promotion.shadow_batches: shadow` (`shadow-N`, or `shadow-off` for 0), to compare shadow on and off."""
    order = [r.batch for r in result.records]
    if truth is not None:
        check_ground_truth(truth, order)
    config = load_config(result.config_path)
    metric = configured_metric(config.model, config.model.task or "classification")
    rejected = {r.batch for r in result.records if r.decision == "reject_batch"}
    runs = [configured_run(result)]
    if shadow is not None and shadow != config.promotion.shadow_batches:
        if batch_dir is None:
            raise ValueError("comparing shadow on and off replays the stream: give its batch_dir")
        promotion = config.promotion.model_copy(update={"shadow_batches": shadow})
        runs.append(replay_variant(result, batch_dir, config.model_copy(update={"promotion": promotion}),
                                   f"shadow-{shadow}" if shadow else "shadow-off", out_dir / "shadow"))
    runs += run_baselines(config, result.initial_paths, result.replayed_paths, rejected, list(baselines))
    scored = scored_batches(result.records)
    summaries = [summarise_run(run, order, scored, metric.name, truth) for run in runs]
    comparison = Comparison(runs, summaries, order, metric.name, metric.higher_is_better, truth)
    notes = [f"{len(scored)} batches judged (accepted by the configured policy's suite, with labels); "
             f"{'higher' if metric.higher_is_better else 'lower'} {metric.name} is better.",
             "Baselines validate nothing and promote every model they train; the configured policy "
             "validates, gates and promotes as in production."]
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison.files = {
        "json": _write_json(out_dir / "policies.json", {
            "metric_name": metric.name, "higher_is_better": metric.higher_is_better,
            "policies": [s.to_dict() for s in summaries],
            "batches": {run.policy: [o.__dict__ for o in run.outcomes] for run in runs},
        }),
        "png": write_png(runs, order, scored, metric.name, out_dir / "policies.png", truth),
        "html": write_html(runs, summaries, order, scored, metric.name, out_dir / "policies.html", truth,
                           notes=notes),
    }
    return comparison


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return path


# --- threshold sweep --------------------------------------------------------------------------

DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "drift_share_threshold": (0.2, 0.3, 0.5),
    "max_relative_drop": (0.02, 0.05, 0.1),
}


def parse_grid(specs: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """`NAME=V1,V2,...` per policy setting (retrainer.config.PolicySettings); none given: DEFAULT_GRID."""
    if not specs:
        return dict(DEFAULT_GRID)
    grid: dict[str, tuple[float, ...]] = {}
    fields = PolicySettings.model_fields
    for spec in specs:
        name, _, values = spec.partition("=")
        name = name.strip().removeprefix("policy.")
        if name not in fields:
            raise ConfigError(f"--sweep-param '{spec}': '{name}' is not a policy setting; "
                              f"choose from: {', '.join(fields)}")
        try:
            parsed = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--sweep-param '{spec}': values must be numbers, e.g. {name}=0.2,0.3") from None
        if not parsed:
            raise ConfigError(f"--sweep-param '{spec}': give NAME=V1,V2,...")
        grid[name] = parsed
    return grid


@dataclass
class SweepPoint:
    """One point of a threshold sweep: its policy settings, the replay's summary, whether they are the
    configured settings, and whether the point is on the metric/retrain-count frontier."""

    settings: dict[str, float]
    summary: PolicySummary
    configured: bool = False
    on_frontier: bool = False


def grid_points(grid: dict[str, tuple[float, ...]]) -> list[dict[str, float]]:
    """Every combination of the grid's values, one settings dict per point."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def run_sweep(result: BacktestResult, batch_dir: Path, grid: dict[str, tuple[float, ...]], out_dir: Path,
              truth: GroundTruth | None = None,
              on_point: Callable[[SweepPoint, int, int], None] | None = None) -> list[SweepPoint]:
    """Replay the stream once per grid point with the backtest's resolved config and those policy settings."""
    base = load_config(result.config_path)
    order = [r.batch for r in result.records]
    if truth is not None:
        check_ground_truth(truth, order)
    scored = scored_batches(result.records)
    metric = configured_metric(base.model, base.model.task or "classification")
    points: list[SweepPoint] = []
    settings_list = grid_points(grid)
    for number, settings in enumerate(settings_list, start=1):
        try:
            # Pydantic takes 2.0 for a whole-number setting and refuses 2.5 with the setting's name.
            policy = base.policy.model_validate({**base.policy.model_dump(), **settings})
        except ValueError as exc:
            raise ConfigError(f"sweep point {settings}: {str(exc).splitlines()[-1].strip()}") from None
        run = replay_variant(result, batch_dir, base.model_copy(update={"policy": policy}), _label(settings),
                             out_dir / f"point-{number:02d}")
        configured = all(getattr(base.policy, k) == v for k, v in settings.items())
        point = SweepPoint(settings, summarise_run(run, order, scored, metric.name, truth), configured)
        points.append(point)
        if on_point:
            on_point(point, number, len(settings_list))
    flags = pareto_frontier([(p.summary.mean_metric, p.summary.retrains) for p in points], metric.higher_is_better)
    for point, flag in zip(points, flags, strict=True):
        point.on_frontier = flag
    _write_json(out_dir / "sweep.json", {"metric_name": metric.name, "grid": {k: list(v) for k, v in grid.items()},
                                         "points": [{"settings": p.settings, "configured": p.configured,
                                                     "on_frontier": p.on_frontier, **p.summary.to_dict()}
                                                    for p in points]})
    return points


def replay_variant(result: BacktestResult, batch_dir: Path, config: RetrainerConfig, label: str,
                   workdir: Path) -> PolicyRun:
    """The backtest's stream replayed again under `config` (a variant of its resolved config), with the
    flows' steps as plain functions (the same decisions as Prefect's runs, without their ~0.7 s a cycle)."""
    config_path = workdir.with_suffix(".yaml")
    workdir.parent.mkdir(parents=True, exist_ok=True)
    write_config(config, config_path)
    started = time.perf_counter()
    # The flows print the gate's verdict for a run's log; the comparison's own table is what the user reads.
    with contextlib.redirect_stdout(io.StringIO()):
        replay = run_backtest(batch_dir, config.model.target, task=config.model.task,
                              init_batches=len(result.initial_paths), config_path=config_path, workdir=workdir,
                              name=config.model.name, orchestrated=False)
    run = configured_run(replay, policy=label)
    run.seconds = time.perf_counter() - started
    return run


def _label(settings: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in settings.items())
