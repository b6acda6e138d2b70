"""Scale-out: 1, 10 and 100 small models (one per segment, e.g. region) monitored in one `monitor-fleet`
flow run, fanned out with Prefect's Dask task runner over a LocalCluster of one worker process per core.

Each model has its own work dir and first champion (trained beforehand, not timed) and gets one
batch. The total work is measured first, one model at a time (a one-worker cluster: the sum of
the model cycles' own seconds); then the same number of new batches runs on all cores. Prints the
wall time of the model phase (first cycle start to last cycle end) and of the whole flow run
(cluster start included), and the ratio to the ideal: total work ÷ cores.
Target (issue 7): <= 1.3× (total work ÷ cores). With one model there is nothing to share: the ratio is
then at least the core count.

    python benchmarks/scale_out.py [--models 1 10 100] [--rows 1000] [--workers N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from retrainer.config import build_config, write_config
from retrainer.core.schema import resolve_model_settings
from retrainer.observability import prepare_environment
from retrainer.replay.scenario import SCRIPT, TARGET, make_batch


def empty_store(root: Path) -> Path:
    """An MLflow SQLite store with its schema in place, copied into each model's work dir: the ~2.4 s of
    migrations a new store costs is set-up, not part of a cycle."""
    import mlflow

    path = root / "template-mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def prepare_models(root: Path, count: int, rows: int, template: Path) -> list[tuple[Path, Path, Path]]:
    """`count` models, each with champion v1 and two batches: (config, batch for the serial pass, for the parallel)."""
    from retrainer.pipeline import cycle

    stable = SCRIPT[1]
    prepared = []
    for number in range(count):
        folder = root / f"segment-{number:03d}"
        (folder / "batches").mkdir(parents=True)
        rng = np.random.default_rng(number)
        paths = []
        for day, name in enumerate(("init", "serial", "parallel")):
            path = folder / "batches" / f"{name}.parquet"
            make_batch(stable, day, rows, rng).to_parquet(path, index=False)
            paths.append(path)
        shutil.copyfile(template, folder / "mlflow.db")
        config = build_config({"model": {"name": f"segment-{number:03d}", "target": TARGET}}, folder)
        import pandas as pd

        config = config.model_copy(update={"model": resolve_model_settings(pd.read_parquet(paths[0]), config.model)})
        write_config(config, folder / "retrainer.yaml")
        with contextlib.redirect_stdout(io.StringIO()):
            cycle.initialise(cycle.PLAIN, str(folder / "retrainer.yaml"), [str(paths[0])])
        prepared.append((folder / "retrainer.yaml", paths[1], paths[2]))
    return prepared


def fleet(jobs: list[tuple[Path, Path]], workers: int) -> tuple[list[dict[str, Any]], float]:
    from retrainer.pipeline.fleet import run_fleet

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        results = run_fleet(jobs, workers=workers)
    return results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--rows", type=int, default=1000, help="rows per batch (default 1000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="retrainer-fleet-"))
    prepare_environment(prefect_home=root / "prefect")
    template = empty_store(root)
    print(f"{args.workers} worker processes (Dask LocalCluster, 1 thread each); {os.cpu_count()} cores; "
          f"batches of {args.rows:,} rows × 10 features")
    print(f"{'models':>7}{'work s':>9}{'ideal s':>9}{'models s':>10}{'ratio':>7}{'flow s':>8}{'failed':>8}  decisions")
    missed = []
    for count in args.models:
        started = time.perf_counter()
        models = prepare_models(root / f"fleet-{count}", count, args.rows, template)
        setup = time.perf_counter() - started
        serial, _ = fleet([(config, first) for config, first, _ in models], workers=1)
        work = sum(r.get("seconds", 0.0) for r in serial)
        parallel, flow_seconds = fleet([(config, second) for config, _, second in models], workers=args.workers)
        done = [r for r in parallel if "error" not in r]
        span = (max(r["finished_at"] for r in done) - min(r["started_at"] for r in done)) if done else float("nan")
        ideal = work / args.workers
        decisions: dict[str, int] = {}
        for r in done:
            decisions[r["record"]["decision"]] = decisions.get(r["record"]["decision"], 0) + 1
        failed = len(parallel) - len(done) + sum("error" in r for r in serial)
        print(f"{count:>7}{work:>9.1f}{ideal:>9.1f}{span:>10.1f}{span / ideal:>6.2f}×{flow_seconds:>8.1f}{failed:>8}  "
              f"{decisions}   (set-up {setup:.0f} s)", flush=True)
        if count >= args.workers and span > 1.3 * ideal:
            missed.append(f"{count} models: {span / ideal:.2f}× the ideal")
    print("targets missed: " + ("none" if not missed else ", ".join(missed)))
    print(f"work dir: {root}")


if __name__ == "__main__":
    main()
