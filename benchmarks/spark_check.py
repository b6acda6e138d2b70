"""Validation and drift of one batch on Spark (local mode) beside the pandas path, at growing sizes.

The batch is cycle_speed's (50 features: 40 numeric, 10 categorical, and a label), written as
parquet; the reference is 10k rows of the same distribution, with the suite drafted from it. Per
size it prints, for each path:
- read + validate: the structural checks and the suite (pandas: Great Expectations' pandas
  datasource on the frame; Spark: GE's Spark datasource on the Spark DataFrame);
- drift: pandas on the bounded uniform sample (drift.sample_size), Spark on the whole batch with
  Evidently's Spark engine;
- the peak memory: pandas, this process's RSS above its start; Spark, this process's plus the
  driver JVM's (local mode runs the executors inside it), above their starts, and the JVM's whole
  peak RSS (its heap, once grown, stays resident from one size to the next);
- whether both paths reach the same verdict and flag the same drifted columns (the batch has two
  shifted columns, so there is something to flag).

The figure that matters for a batch larger than memory is the memory column: the pandas path holds
the batch (and copies of it) in RAM, the Spark path holds aggregates; the JVM's heap is capped by
spark.driver.memory (Spark's default: 1 GB).

    python benchmarks/spark_check.py [--sizes 100000 1000000] [--master local[2]] [--features 50] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from cycle_speed import REFERENCE_ROWS, make_batch, proc_status_mb

from retrainer.config import DriftSettings, ModelSettings
from retrainer.core.schema import feature_frame, infer_schema
from retrainer.monitoring import compute_drift
from retrainer.spark.drift import spark_drift
from retrainer.spark.session import read_spark_batch, spark_session
from retrainer.spark.validation import validate_spark_batch
from retrainer.validation import draft_suite, save_suite, validate_batch

SHIFTED = ("n0", "c1")


@contextlib.contextmanager
def measured(into: dict[str, float], stage: str, pids: list[int | str]) -> Iterator[None]:
    """Wall seconds, and the peak RSS of `pids` above their RSS at the start (Linux: writing 5 to
    clear_refs resets a process's peak)."""
    before = {}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before[pid] = proc_status_mb("VmRSS", pid)
    started = time.perf_counter()
    yield
    into[stage] = time.perf_counter() - started
    into[stage + "_mb"] = sum(max(0.0, proc_status_mb("VmHWM", pid) - before[pid]) for pid in pids)
    # The last pid's whole peak: the JVM's heap, once grown, stays resident across sizes.
    into[stage + "_total"] = proc_status_mb("VmHWM", pids[-1])


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["n0"] = frame["n0"] + 1.0  # half a standard deviation of n0's distribution
    frame["c1"] = frame["c1"].where(frame.index % 2 == 0, "v0")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2]: this machine)")
    parser.add_argument("--workdir", help="folder for the files (default: a temporary one)")
    parser.add_argument("--features", type=int, default=50,
                        help="keep the first N features (default all 50; the smoke test uses fewer)")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="retrainer-spark-bench-"))
    root.mkdir(parents=True, exist_ok=True)

    def bench_batch(rows: int, seed: int) -> pd.DataFrame:
        frame = make_batch(rows, seed)
        features = [c for c in frame.columns if c != "y"]
        kept = [*SHIFTED, *(c for c in features if c not in SHIFTED)][:max(args.features, len(SHIFTED))]
        return frame[[c for c in frame.columns if c in kept or c == "y"]]

    reference = bench_batch(REFERENCE_ROWS, seed=1)
    schema = infer_schema(reference, ModelSettings(name="spark-bench", target="y"))
    suite = root / "suite.json"
    save_suite(draft_suite(reference, schema, "spark-bench"), suite)
    settings = DriftSettings()
    spark = spark_session(args.master)
    jvm_pid: Any = spark.sparkContext._jvm.ProcessHandle.current().pid()  # type: ignore[union-attr]
    spark_reference = spark.createDataFrame(feature_frame(reference, schema)).cache()
    spark_reference.count()

    print(f"validation and drift, pandas vs Spark ({args.master}); {len(schema.features)} features; reference {REFERENCE_ROWS:,} rows; "
          f"drift sample (pandas) {settings.sample_size:,} rows")
    print(f"{'rows':>10} {'batch MB':>9} | {'validate s':>10} {'drift s':>8} {'peak MB':>8} | "
          f"{'validate s':>10} {'drift s':>8} {'peak MB':>8} {'JVM MB':>7} | same verdicts")
    print(f"{'':>10} {'':>9} | {'pandas':^30} | {'Spark':^38} |")
    for rows in args.sizes:
        path = root / f"batch-{rows}.parquet"
        shifted(bench_batch(rows, seed=rows)).to_parquet(path)
        pandas_figures: dict[str, float] = {}
        with measured(pandas_figures, "validate", ["self"]):
            frame = pd.read_parquet(path)
            pandas_outcome = validate_batch(frame, schema, suite)
        batch_mb = frame.memory_usage(deep=True).sum() / 2**20
        with measured(pandas_figures, "drift", ["self"]):
            pandas_drift = compute_drift(feature_frame(reference, schema), feature_frame(frame, schema), schema,
                                         settings, 0.3)
        del frame

        spark_figures: dict[str, float] = {}
        with measured(spark_figures, "validate", ["self", jvm_pid]):
            batch = read_spark_batch(spark, str(path))
            spark_outcome = validate_spark_batch(batch, schema, suite)
        with measured(spark_figures, "drift", ["self", jvm_pid]):
            on_spark = spark_drift(spark_reference, batch, schema, settings, 0.3)
        same = (pandas_outcome.valid == spark_outcome.valid and pandas_outcome.failures == spark_outcome.failures
                and pandas_drift.drifted_features == on_spark.drifted_features)
        print(f"{rows:>10,} {batch_mb:>9.0f} | {pandas_figures['validate']:>10.2f} {pandas_figures['drift']:>8.2f} "
              f"{max(pandas_figures['validate_mb'], pandas_figures['drift_mb']):>8.0f} | "
              f"{spark_figures['validate']:>10.2f} {spark_figures['drift']:>8.2f} "
              f"{max(spark_figures['validate_mb'], spark_figures['drift_mb']):>8.0f} "
              f"{max(spark_figures['validate_total'], spark_figures['drift_total']):>7.0f} | "
              f"{'yes' if same else 'NO'} (accepted: {pandas_outcome.valid}/{spark_outcome.valid}; drifted: "
              f"{','.join(pandas_drift.drifted_features) or '-'} / {','.join(on_spark.drifted_features) or '-'})")
    spark.stop()


if __name__ == "__main__":
    main()
