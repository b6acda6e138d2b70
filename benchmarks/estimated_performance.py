"""How well the estimated performance (calibrated confidence, no labels) tracks the realized one.

Replays the bundled demo scenario (16 daily batches of pump readings: stable days, humidity
drift, two broken batches, a concept change, recovery) and, for every accepted batch the
champion scored, prints the realized accuracy beside the estimate made without looking at the
labels. Prints the mean absolute error over all those batches and without the concept-change
batch: confidence-based estimation follows covariate shift but cannot see a concept change
(the same inputs now meaning another label), which only labels reveal.

    python benchmarks/estimated_performance.py [--rows 3000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import SCRIPT, TARGET, write_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="retrainer-estimate-"))
    write_scenario(root / "batches", rows=args.rows, seed=7, script=SCRIPT)
    result = run_backtest(root / "batches", TARGET, workdir=root / "work", name="estimate")
    events = {spec.name: spec.event for spec in SCRIPT}

    print(f"{'batch':<8} {'event':<28} {'realized':>9} {'estimated':>10} {'± sd':>7} {'error':>7}")
    errors: dict[str, float] = {}
    for record in result.records:
        if record.decision in ("init", "reject_batch") or record.metric is None or record.estimated_metric is None:
            continue
        error = record.estimated_metric - record.metric
        errors[record.batch] = error
        print(f"{record.batch:<8} {events.get(record.batch, ''):<28} {record.metric:>9.3f} "
              f"{record.estimated_metric:>10.3f} {record.estimated_metric_std or 0:>7.3f} {error:>+7.3f}")
    concept = {name for name, event in events.items() if event == "concept change"}
    everything = [abs(e) for e in errors.values()]
    without = [abs(e) for name, e in errors.items() if name not in concept]
    print(f"\nmean absolute error, all {len(everything)} scored batches: {sum(everything) / len(everything):.4f}")
    print(f"mean absolute error without the concept-change batch ({len(without)}): {sum(without) / len(without):.4f}")
    print(f"largest error without it: {max(without):.4f}")


if __name__ == "__main__":
    main()
