"""What Prefect costs per monitoring cycle: the bundled scenario (the demo's 16 daily batches) replayed
twice through the same code, once as Prefect flow and task runs (as in production), once with every
flow and task called as the plain function it wraps (no runs, states, artifacts or API calls).

Prints the seconds per cycle in each mode, the overhead per cycle (absolute and as a ratio), and
checks that both modes took the same decisions. Both replays run in this one process, one after
the other, so the ratio is measured on one machine in one run.

    python benchmarks/orchestration_overhead.py [--rows 3000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrainer.backtest import run_backtest
from retrainer.observability import prepare_environment
from retrainer.records import BatchRecord
from retrainer.scenario import TARGET, write_scenario


def _direct(function: Callable[..., Any]) -> Callable[..., Any]:
    """A flow or task called as its plain function; `return_state=True` callers get a bare State."""
    from prefect.states import Completed, Failed

    def call(*args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        if not return_state:
            return function(*args, **kwargs)
        try:
            return Completed(data=function(*args, **kwargs))
        except Exception as exc:
            return Failed(data=exc)

    return call


@contextmanager
def without_prefect() -> Iterator[None]:
    """Every flow and task of retrainer as its plain function, and no Prefect artifacts."""
    from prefect import Flow, Task

    import retrainer.flows as flows
    import retrainer.tasks as tasks

    saved: list[tuple[Any, str, Any]] = []
    for module in (flows, tasks):
        for name, value in list(vars(module).items()):
            if isinstance(value, (Flow, Task)):
                saved.append((module, name, value))
                setattr(module, name, _direct(value.fn))
    for name in ("create_markdown_artifact", "create_table_artifact", "create_link_artifact"):
        saved.append((tasks, name, getattr(tasks, name)))
        setattr(tasks, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def replay(batches: Path, workdir: Path) -> tuple[list[BatchRecord], list[float], float]:
    """The scenario through `backtest`; returns the records, each later cycle's wall seconds, start-up."""
    stamps: list[float] = []
    result = run_backtest(batches, TARGET, workdir=workdir, name="overhead",
                          on_record=lambda *progress: stamps.append(time.perf_counter()))
    cycles = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
    return result.records, cycles, result.startup_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="rows per batch (default: the demo's 3000)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="retrainer-overhead-"))
    # Before Prefect is first imported: a local temporary API, and its logs quiet.
    prepare_environment(prefect_home=root / "prefect")
    write_scenario(root / "batches", rows=args.rows)

    with without_prefect():
        direct_records, direct, direct_startup = replay(root / "batches", root / "direct")
    prefect_records, orchestrated, prefect_startup = replay(root / "batches", root / "prefect")

    same = [r.decision for r in direct_records] == [r.decision for r in prefect_records]
    print(f"scenario: {len(prefect_records)} batches × {args.rows} rows; decisions "
          f"{'identical' if same else 'DIFFERENT'} in both modes "
          f"({sum(r.decision == 'retrain' for r in prefect_records)} retrain, "
          f"{sum(r.decision == 'reject_batch' for r in prefect_records)} reject)")
    print(f"{'':<28}{'direct':>10}{'prefect':>10}{'overhead':>10}{'ratio':>8}")

    def row(label: str, a: float, b: float) -> None:
        print(f"{label:<28}{a:>9.2f}s{b:>9.2f}s{b - a:>9.2f}s{b / a:>7.2f}x")

    row("seconds per cycle (mean)", statistics.mean(direct), statistics.mean(orchestrated))
    row("seconds per cycle (median)", statistics.median(direct), statistics.median(orchestrated))
    quiet = [i for i, r in enumerate(prefect_records[1:]) if r.decision == "none"]
    row("cycle without retrain (med.)", statistics.median(direct[i] for i in quiet),
        statistics.median(orchestrated[i] for i in quiet))
    row("all cycles (sum)", sum(direct), sum(orchestrated))
    row("start-up + champion v1", direct_startup, prefect_startup)


if __name__ == "__main__":
    main()
