"""Speed and memory of one monitoring cycle at 10k, 100k and 1M rows × 50 features (40 numeric,
10 categorical), with a stable batch (the decision is `none`, so no retrain is timed).

For each size it prints:
- the library stages called on their own, each with its wall time and peak RSS above the process's
  RSS before it (read: pandas/pyarrow; validate: Great Expectations; score: the champion's
  scikit-learn predict and predict_proba; drift: Evidently's stat tests on the bounded sample; ood: the isolation
  forest; decide: the pure policy; record: one MLflow run with the record);
- the whole cycle (`monitor-batch` as `retrainer backtest` replays it) with and without Prefect
  (retrainer.pipeline.cycle.PLAIN), its peak RSS, and the ratio to the sum of the library stages: the
  first cycle after init ("first": it also loads the champion, predicts its training reference and fits
  the isolation forest, once per champion and process) and the next batch's ("cycle": what each further
  batch costs a running worker, the stages alone; the targets are judged on it);
- the drift stage against a floor of raw per-column scipy tests on the same sample, and against
  Evidently's `DataDriftPreset` report on the same frames, with the per-column verdicts compared.
Then whether time grows linearly in rows, and a whole cycle on 5k rows × 10 features (the demo's
columns) as Prefect runs it.

Beside the validate stage: GE's BOOLEAN_ONLY pass of the same suite over the whole table in one call, and a
plain numpy/pandas floor of the same checks (validation_speed.py's, which must agree with GE on which fail).

Targets (issue 18, tighter than issue 7's 1.5× and 3×): cycle <= 1.3× the sum of its library stages with
and without Prefect; validation <= 4× the numpy floor at 1M rows; peak RSS <= 2× the batch in memory
(pandas' deep memory usage) at 1M rows; drift <= 3× the floor and >= 5× faster than the report; time linear
in rows; 5k × 10 cycle <= 3 s.

    python benchmarks/cycle_speed.py [--sizes 10000 100000 1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from drift_speed import CATEGORICAL, NUMERIC, best_of, floor, make_frame
from validation_speed import boolean_only, numpy_floor

from retrainer.config import DriftSettings, PolicySettings, load_config
from retrainer.core.decision import Signals
from retrainer.core.policy import decide
from retrainer.core.schema import feature_frame, schema_from_settings
from retrainer.core.training import train
from retrainer.monitoring import compute_drift, fit_novelty, score_novelty
from retrainer.monitoring.drift import sample
from retrainer.observability import prepare_environment
from retrainer.replay.backtest import run_backtest
from retrainer.validation import load_suite, validate_batch

REFERENCE_ROWS = 10_000


def proc_status_mb(key: str, pid: int | str = "self") -> float:
    """A /proc/<pid>/status figure in MB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith(key))
    return int(line.split()[1]) / 1024


@contextlib.contextmanager
def measured(into: dict[str, tuple[float, float]], stage: str) -> Iterator[None]:
    """Wall seconds and peak RSS above the RSS at the start (Linux: clear_refs 5 resets the peak)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = proc_status_mb("VmRSS")
    started = time.perf_counter()
    yield
    into[stage] = (time.perf_counter() - started, max(0.0, proc_status_mb("VmHWM") - before))


def make_batch(rows: int, seed: int) -> pd.DataFrame:
    frame = make_frame(rows, seed)
    rng = np.random.default_rng(seed + 100)
    logit = frame["n0"] - 0.5 * frame["n3"] + np.where(frame["c1"] == "v0", 0.8, 0.0)
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@dataclass
class Cycle:
    seconds: float
    peak_mb: float
    stages: dict[str, float]
    decision: str


def replay_cycle(folder: Path, name: str, direct: bool) -> tuple[Cycle, Cycle]:
    """The init batch then the measured batches through `backtest`: the first cycle after init (it also
    loads the champion, predicts its training reference and fits the isolation forest: once per champion
    and process) and the next one (what each further batch costs a worker that keeps running)."""
    marks: list[tuple[float, float, float]] = []  # per record: time, peak RSS since the last, RSS after

    def on_record(*_: Any) -> None:
        peak = proc_status_mb("VmHWM")
        Path("/proc/self/clear_refs").write_text("5")
        marks.append((time.perf_counter(), peak, proc_status_mb("VmRSS")))

    with contextlib.redirect_stdout(io.StringIO()):
        result = run_backtest(folder / "batches", "y", task="classification", workdir=folder / name, name="speed",
                              on_record=on_record, orchestrated=not direct)

    def cycle(k: int) -> Cycle:
        record = result.records[k]
        return Cycle(marks[k][0] - marks[k - 1][0], max(0.0, marks[k][1] - marks[k - 1][2]), record.stage_seconds,
                     record.decision)

    return cycle(1), cycle(len(marks) - 1)


def library_stages(folder: Path, reference: pd.DataFrame, batch_path: Path) -> tuple[dict[str, tuple[float, float]], Any]:
    config = load_config(folder / "direct" / "retrainer.yaml")
    schema = schema_from_settings(config.model)
    trained = train(reference, schema, config.model.estimator, config.training)
    novelty = fit_novelty(reference, schema, config.drift.ood_reference_quantile)
    suite = config.suite_path
    import mlflow

    # The store exists before the clock starts, as in a cycle (its schema migrations are start-up).
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'record.db'}")
    experiment = client.create_experiment("speed")
    stages: dict[str, tuple[float, float]] = {}
    with measured(stages, "read"):
        frame = pd.read_parquet(batch_path)
    with measured(stages, "validate"):
        outcome = validate_batch(frame, schema, suite)
    with measured(stages, "score"):
        # What a cycle asks of the champion: its decisions (a model's own threshold may differ from the most
        # probable class) and its probabilities (calibration, log loss, ROC AUC).
        inputs = feature_frame(frame, schema)
        trained.pipeline.predict(inputs)
        trained.pipeline.predict_proba(inputs)
        del inputs
    with measured(stages, "drift"):
        drift = compute_drift(reference, frame, schema, config.drift, config.policy.drift_share_threshold)
    with measured(stages, "ood"):
        score_novelty(novelty, frame, schema, config.drift.ood_top_rows)
    with measured(stages, "decide"):
        decide(Signals(batch_index=1, valid=outcome.valid, drift_share=drift.share), [], PolicySettings())
    with measured(stages, "record"):
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("drift_share", drift.share, 0, 0)])
        client.log_dict(run.info.run_id, {"decision": "none", "drift": drift.to_dict()}, "record.json")
        client.set_terminated(run.info.run_id)
    return stages, frame


def evidently_verdicts(reference: pd.DataFrame, current: pd.DataFrame, schema: Any, size: int) -> tuple[float, set[str]]:
    """Seconds of Evidently's DataDriftPreset report on the same sampled frames, and its drifted columns."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(schema.numeric), categorical_columns=list(schema.categorical))
    columns = list(schema.features)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset(columns=columns)]).run(
        Dataset.from_pandas(sample(current, size)[columns], data_definition=definition),
        Dataset.from_pandas(sample(reference, size)[columns], data_definition=definition),
    )
    seconds = time.perf_counter() - started
    drifted = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        # p-value tests drift below the threshold; distances at or above it.
        if ("p_value" in config["method"] and value < threshold) or ("p_value" not in config["method"]
                                                                      and value >= threshold):
            drifted.add(config["column"])
    return seconds, drifted


def validation_beside_floor(frame: pd.DataFrame, schema: Any, suite_path: Path, ours: float, rows: int) -> list[str]:
    """Print the validate stage beside GE's BOOLEAN_ONLY pass over the whole table and the numpy floor of the
    same checks; the target missed, if it is."""
    boolean_s, failed_in_ge = boolean_only(frame, schema, suite_path)
    floor_s, failed_in_numpy = numpy_floor(frame, schema, load_suite(suite_path))
    if failed_in_ge != failed_in_numpy:
        raise SystemExit(f"the numpy floor disagrees with GE: {failed_in_ge ^ failed_in_numpy}")
    print(f"  validation: ours {ours:.2f} s = {ours / floor_s:.1f}× the numpy floor ({floor_s:.2f} s); "
          f"GE BOOLEAN_ONLY in one pass over the whole table {boolean_s:.2f} s")
    if rows >= 1_000_000 and ours > 4 * floor_s:
        return [f"{rows:,} rows: validation {ours / floor_s:.1f}× the numpy floor"]
    return []


def small_cycle(root: Path, rows: int) -> float:
    """Median seconds of a cycle on `rows` rows × 10 features (the demo's pump readings), as Prefect runs it."""
    from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario

    script = tuple(ScriptedBatch(f"s{i}", "stable", "none") for i in range(1, 7))
    write_scenario(root / "small" / "batches", rows=rows, seed=5, script=script)
    stamps: list[float] = []
    with contextlib.redirect_stdout(io.StringIO()):
        run_backtest(root / "small" / "batches", TARGET, workdir=root / "small" / "work", name="small",
                     on_record=lambda *_: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in itertools.pairwise(stamps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--small-rows", type=int, default=5000, help="rows of the small whole-cycle check")
    parser.add_argument("--reference-rows", type=int, default=REFERENCE_ROWS,
                        help=f"rows the champion is trained on (default {REFERENCE_ROWS:,}; the smoke test uses fewer)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="retrainer-cycle-"))
    prepare_environment(prefect_home=root / "prefect")
    reference = make_batch(args.reference_rows, 0)
    print(f"{NUMERIC} numeric + {CATEGORICAL} categorical features; champion trained on {args.reference_rows:,} rows; "
          f"process RSS at start {proc_status_mb('VmRSS'):.0f} MB")
    # Warm-up, both modes: the Prefect server start and the imports a first cycle pays are not part
    # of any measured cycle, whichever mode runs first.
    warm = root / "warm-up"
    (warm / "batches").mkdir(parents=True)
    for number, frame in enumerate((reference.head(min(2000, args.reference_rows)), make_batch(2000, 7)), start=1):
        frame.to_parquet(warm / "batches" / f"b{number}.parquet", index=False)
    replay_cycle(warm, "direct", direct=True)
    replay_cycle(warm, "prefect", direct=False)
    per_row: list[tuple[int, float]] = []
    failures: list[str] = []
    for rows in args.sizes:
        folder = root / f"rows-{rows}"
        (folder / "batches").mkdir(parents=True)
        reference.to_parquet(folder / "batches" / "b1.parquet", index=False)
        batch = make_batch(rows, 1)
        batch.to_parquet(folder / "batches" / "b2.parquet", index=False)
        in_memory = batch.memory_usage(deep=True).sum() / 2**20
        make_batch(rows, 2).to_parquet(folder / "batches" / "b3.parquet", index=False)
        del batch
        first_direct, direct = replay_cycle(folder, "direct", direct=True)
        first_orchestrated, orchestrated = replay_cycle(folder, "prefect", direct=False)
        stages, frame = library_stages(folder, reference, folder / "batches" / "b2.parquet")
        library = sum(s for s, _ in stages.values())
        print(f"\n== {rows:,} rows × {NUMERIC + CATEGORICAL} features: batch in memory {in_memory:,.0f} MB; "
              f"decision {orchestrated.decision}")
        print(f"  {'library stage':<14}{'seconds':>9}{'peak MB':>10}{'in cycle s':>12}")
        for stage, (seconds, peak) in stages.items():
            print(f"  {stage:<14}{seconds:>9.3f}{peak:>10.0f}{orchestrated.stages.get(stage, 0.0):>12.3f}")
        print(f"  {'sum':<14}{library:>9.3f}{max(p for _, p in stages.values()):>10.0f}"
              f"{sum(orchestrated.stages.values()):>12.3f}")
        config = load_config(folder / "direct" / "retrainer.yaml")
        schema = schema_from_settings(config.model)
        failures += validation_beside_floor(frame, schema, config.suite_path, stages["validate"][0], rows)
        for label, cycle in (("first, direct", first_direct), ("first, Prefect", first_orchestrated),
                             ("cycle, direct", direct), ("cycle, Prefect", orchestrated)):
            ratio = cycle.seconds / library
            print(f"  {label:<14}{cycle.seconds:>9.3f}{cycle.peak_mb:>10.0f}   {ratio:.2f}× the library stages, "
                  f"peak {cycle.peak_mb / in_memory:.1f}× the batch")
        print(f"  orchestration overhead: +{orchestrated.seconds - direct.seconds:.2f} s "
              f"({orchestrated.seconds / direct.seconds:.2f}×)")
        if direct.seconds > 1.3 * library:
            failures.append(f"{rows:,} rows: cycle (direct) {direct.seconds / library:.2f}× the library stages")
        if orchestrated.seconds > 1.3 * library:
            failures.append(f"{rows:,} rows: cycle (Prefect) {orchestrated.seconds / library:.2f}× the library stages")
        for label, cycle in (("direct", direct), ("Prefect", orchestrated)):
            if rows >= 1_000_000 and cycle.peak_mb > 2 * in_memory:
                failures.append(f"{rows:,} rows: peak RSS ({label}) {cycle.peak_mb / in_memory:.1f}× the batch")
        per_row.append((rows, direct.seconds))

        settings = DriftSettings()
        floor_s = best_of(3, functools.partial(floor, reference, frame, schema, settings.sample_size))
        ours_s = best_of(3, functools.partial(compute_drift, reference, frame, schema, settings, 0.3))
        report_s, report_drifted = evidently_verdicts(reference, frame, schema, settings.sample_size)
        ours = set(compute_drift(reference, frame, schema, settings, 0.3).drifted_features)
        print(f"  drift: {ours_s:.3f} s = {ours_s / floor_s:.2f}× the scipy floor ({floor_s:.3f} s); Evidently report "
              f"{report_s:.2f} s = {report_s / ours_s:.0f}× ours; per-column verdicts "
              f"{'identical' if ours == report_drifted else f'DIFFER: {sorted(ours ^ report_drifted)}'}")
        if ours_s > 3 * floor_s:
            failures.append(f"{rows:,} rows: drift {ours_s / floor_s:.1f}× the floor")
        if report_s < 5 * ours_s:
            failures.append(f"{rows:,} rows: Evidently report only {report_s / ours_s:.1f}× slower")
    print("\nlinear in rows (cycle seconds, direct):")
    for (small, small_s), (large, large_s) in itertools.pairwise(per_row):
        print(f"  {small:,} -> {large:,} rows: {large / small:.0f}× rows, {large_s / small_s:.1f}× time")
    small = small_cycle(root, args.small_rows)
    print(f"\nwhole cycle, {args.small_rows:,} rows × 10 features, Prefect (median of 5): {small:.2f} s "
          f"(target <= 3 s: {'met' if small <= 3 else 'MISSED'})")
    print("targets missed: " + ("none" if not failures else f"{len(failures)}\n  " + "\n  ".join(failures)))
    print(f"work dir: {root}")


if __name__ == "__main__":
    main()
