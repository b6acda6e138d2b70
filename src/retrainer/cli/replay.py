"""`retrainer demo` and `retrainer backtest` (with its baselines and sweep): offline replays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from retrainer.errors import UserError

if TYPE_CHECKING:
    from retrainer.replay.backtest import BacktestResult
    from retrainer.replay.comparison import GroundTruth


def cmd_demo(args: argparse.Namespace) -> int:
    """`retrainer demo`: run the bundled scenario end to end in a work dir, printing its timeline."""
    from retrainer.replay.demo import run_demo

    run_demo(Path(args.workdir), rows=args.rows, verbose=args.verbose)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """`retrainer backtest`: replay a folder of batch files through the production cycle.

    With `--baselines` the stream is replayed again under the baseline policies, with `--sweep` once per
    point of a grid of policy thresholds; a `--truth` file is checked before the replay starts."""
    from retrainer.replay.backtest import run_backtest
    from retrainer.replay.demo import TimelinePrinter, print_summary

    truth = _ground_truth(args.truth, Path(args.batch_dir)) if args.truth else None
    grid = _sweep_grid(args.sweep_param) if args.sweep else None
    printer = TimelinePrinter(sys.stdout)
    printer.start()
    result = run_backtest(
        Path(args.batch_dir), args.target, task=args.task, init_batches=args.init_batches,
        config_path=Path(args.config) if args.config else None,
        workdir=Path(args.workdir) if args.workdir else None,
        json_out=Path(args.json) if args.json else None, on_record=printer, verbose=args.verbose,
    )
    print_summary(result, sys.stdout)
    print(f"work dir: {result.workdir}" + (f"\ntimeline: {args.json}" if args.json else ""))
    if args.baselines:
        _compare_baselines(result, args.every_k, truth, Path(args.batch_dir), args.shadow)
    if grid is not None:
        _sweep(result, Path(args.batch_dir), grid, truth)
    return 0


def _ground_truth(path: str, batch_dir: Path) -> GroundTruth:
    """The truth file, checked against the folder's batch names before the (long) replay starts."""
    from retrainer.data.batches import batch_name, list_batch_files
    from retrainer.replay.comparison import GroundTruthError, check_ground_truth, load_ground_truth

    try:
        truth = load_ground_truth(Path(path))
        if batch_dir.is_dir():
            check_ground_truth(truth, [batch_name(p) for p in list_batch_files(batch_dir)])
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    return truth


def _sweep_grid(specs: list[str]) -> dict[str, tuple[float, ...]]:
    from retrainer.replay.sweep import parse_grid

    return parse_grid(specs or [])


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def _compare_baselines(result: BacktestResult, every_k: int, truth: GroundTruth | None, batch_dir: Path,
                       shadow: int | None) -> None:
    from retrainer.replay.baselines import default_baselines
    from retrainer.replay.comparison import GroundTruthError
    from retrainer.replay.plots import summary_rows
    from retrainer.replay.sweep import compare_policies

    also = "" if shadow is None else f", and the configured policy with promotion.shadow_batches {shadow}"
    print(f"\nreplaying the same stream under the baselines (never, every-{every_k}, every-batch, drift-trigger"
          f"{also}) …", flush=True)
    try:
        comparison = compare_policies(result, default_baselines(every_k), result.workdir, truth, batch_dir, shadow)
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    print(f"\npolicies on the same {len(comparison.order)} batches "
          f"({'higher' if comparison.higher_is_better else 'lower'} {comparison.metric_name} is better; "
          "baselines validate nothing and promote whatever they train):")
    _print_table(*summary_rows(comparison.summaries, truth is not None))
    print("\n".join(f"{kind}: {path}" for kind, path in comparison.files.items()))


def _sweep(result: BacktestResult, batch_dir: Path, grid: dict[str, tuple[float, ...]],
           truth: GroundTruth | None) -> None:
    from retrainer.replay.comparison import GroundTruthError
    from retrainer.replay.sweep import grid_points, run_sweep

    out = result.workdir / "sweep"
    print(f"\nsweep: {len(grid_points(grid))} policy settings, each a replay of the stream …", flush=True)
    try:
        points = run_sweep(result, batch_dir, grid, out, truth,
                           on_point=lambda p, n, total: print(f"  {n}/{total} {p.summary.policy}: mean "
                                                              f"{p.summary.mean_metric or float('nan'):.4f}, "
                                                              f"{p.summary.retrains} retrains", flush=True))
    except GroundTruthError as exc:
        raise UserError(str(exc)) from None
    metric = points[0].summary.metric_name if points else "metric"
    header = [*grid, f"mean {metric}", "retrains", "promotions", "frontier"]
    rows = [[f"{p.settings[k]:g}" for k in grid]
            + ["-" if p.summary.mean_metric is None else f"{p.summary.mean_metric:.4f}", str(p.summary.retrains),
               str(p.summary.promotions), ("yes" if p.on_frontier else "") + (" (configured)" if p.configured else "")]
            for p in points]
    print(f"\n{metric}/retrain-count frontier (frontier: no other setting has as good a metric with fewer retrains):")
    _print_table(header, rows)
    print(f"sweep: {out / 'sweep.json'}")
