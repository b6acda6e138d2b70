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
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from retrainer.core.records import BatchRecord
from retrainer.observability import prepare_environment
from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, write_scenario


def replay(batches: Path, workdir: Path, orchestrated: bool) -> tuple[list[BatchRecord], list[float], float]:
    """The scenario through `backtest`; returns the records, each later cycle's wall seconds, start-up."""
    stamps: list[float] = []
    result = run_backtest(batches, TARGET, workdir=workdir, name="overhead", orchestrated=orchestrated,
                          on_record=lambda *progress: stamps.append(time.perf_counter()))
    cycles = [later - earlier for earlier, later in itertools.pairwise(stamps)]
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

    direct_records, direct, direct_startup = replay(root / "batches", root / "direct", orchestrated=False)
    prefect_records, orchestrated, prefect_startup = replay(root / "batches", root / "prefect", orchestrated=True)

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
