"""Speed of a backtest: 20 batches of 5,000 rows × 10 numeric and categorical features.

Prints the wall time, the fixed start-up (Prefect's local API, imports, champion v1), the
seconds per batch, and the seconds per stage (read, validate, score, drift, decide, retrain,
record). Target (walking-skeleton issue): the whole backtest in under 5 minutes on 2 cores.

    python benchmarks/backtest_speed.py [--rows 5000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

STREAM = (
    ScriptedBatch("b01", "stable", "init"),
    *(ScriptedBatch(f"b{i:02d}", "stable", "none") for i in range(2, 10)),
    ScriptedBatch("b10", "humidity drift", "none", humidity_shift=20),
    ScriptedBatch("b11", "humidity drift", "none", humidity_shift=20),
    ScriptedBatch("b12", "lost column", "reject_batch", drop_column="vibration_mm_s"),
    ScriptedBatch("b13", "°F", "reject_batch", fahrenheit=True),
    ScriptedBatch("b14", "stable", "none"),
    ScriptedBatch("b15", "stable", "none"),
    ScriptedBatch("b16", "concept change", "retrain", concept=1),
    *(ScriptedBatch(f"b{i:02d}", "new concept", "none", concept=1) for i in range(17, 21)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="retrainer-bench-"))
    write_scenario(root / "batches", rows=args.rows, seed=3, script=STREAM)

    started = time.perf_counter()
    result = run_backtest(root / "batches", TARGET, workdir=root / "work", json_out=root / "timeline.json",
                          name="bench")
    wall = time.perf_counter() - started
    cycles = [r for r in result.records if r.decision != "init"]
    per_batch = (wall - result.startup_seconds) / len(cycles)
    decisions = [r.decision for r in result.records]

    print(f"batches: {len(result.records)} × {args.rows} rows × 10 features; decisions: "
          f"{decisions.count('retrain')} retrain, {decisions.count('reject_batch')} reject, {decisions.count('none')} none")
    print(f"wall time:                {wall:7.1f} s  (target < 300 s: {'met' if wall < 300 else 'MISSED'})")
    print(f"start-up + champion v1:   {result.startup_seconds:7.1f} s")
    print(f"seconds per later batch:  {per_batch:7.2f} s  (includes Prefect's fixed cost per flow run)")
    print("seconds per stage, summed over batches (share of the per-batch time):")
    total_cycle = wall - result.startup_seconds
    for stage in ("read", "validate", "score", "drift", "decide", "retrain", "record"):
        seconds = result.stage_seconds.get(stage, 0.0)
        print(f"  {stage:<9} {seconds:7.2f} s  {seconds / total_cycle:6.1%}")
    measured = sum(result.stage_seconds.values())
    print(f"  {'other':<9} {total_cycle - measured:7.2f} s  {(total_cycle - measured) / total_cycle:6.1%}"
          "  (flow-run orchestration, journal, accept/quarantine)")


if __name__ == "__main__":
    main()
