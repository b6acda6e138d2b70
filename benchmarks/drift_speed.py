"""Speed of the drift stage: 50 columns, batches of 10k and 1M rows.

Three ways over the same frames:
- retrainer: `compute_drift` (a bounded uniform sample, then Evidently's stat test per column);
- floor: the same per-column math in raw scipy (Wasserstein distance normed by the reference's
  standard deviation, Jensen-Shannon distance of category frequencies) on the same sample;
- report: Evidently's `DataDriftPreset` report on the same sample, as tutorials use it.
Prints seconds and the ratio to the floor (monitoring issue target: retrainer ≤ 3× the floor).

    python benchmarks/drift_speed.py [--sizes 10000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from retrainer.config import DriftSettings
from retrainer.core.schema import BatchSchema
from retrainer.monitoring import compute_drift
from retrainer.monitoring.drift import sample

NUMERIC, CATEGORICAL = 40, 10


def make_frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f"n{i}": rng.normal(shift * (i % 2), 1 + i % 3, rows) for i in range(NUMERIC)}
    for i in range(CATEGORICAL):
        data[f"c{i}"] = rng.choice([f"v{k}" for k in range(3 + i)], rows)
    return pd.DataFrame(data)


def floor(reference: pd.DataFrame, current: pd.DataFrame, schema: BatchSchema, size: int) -> int:
    """Raw scipy on the same sample: what the per-column tests cost without any framework."""
    reference, current = sample(reference, size), sample(current, size)
    drifted = 0
    for column in schema.numeric:
        ref = reference[column].to_numpy()
        score = stats.wasserstein_distance(ref, current[column].to_numpy()) / np.std(ref)
        drifted += score >= 0.1
    for column in schema.categorical:
        keys = pd.Index(reference[column].unique()).union(current[column].unique())
        p = reference[column].value_counts(normalize=True).reindex(keys, fill_value=0)
        q = current[column].value_counts(normalize=True).reindex(keys, fill_value=0)
        drifted += distance.jensenshannon(p, q) >= 0.1
    return int(drifted)


def report(reference: pd.DataFrame, current: pd.DataFrame, schema: BatchSchema, size: int) -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(schema.numeric), categorical_columns=list(schema.categorical))
    Report([DataDriftPreset()]).run(
        Dataset.from_pandas(sample(current, size), data_definition=definition),
        Dataset.from_pandas(sample(reference, size), data_definition=definition),
    )


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = BatchSchema(target="y", task="classification",
                         numeric=tuple(f"n{i}" for i in range(NUMERIC)),
                         categorical=tuple(f"c{i}" for i in range(CATEGORICAL)))
    settings = DriftSettings()
    reference = make_frame(settings.sample_size, 0)
    compute_drift(reference, reference, schema, settings, 0.3)  # warm-up: imports
    report(reference.head(500), reference.head(500), schema, settings.sample_size)
    print(f"{NUMERIC} numeric + {CATEGORICAL} categorical columns; drift sample {settings.sample_size} rows")
    print(f"{'rows':>9} {'floor s':>8} {'retrainer s':>12} {'ratio':>6} {'report s':>9} {'ratio':>6}  drifted (retrainer/floor)")
    for size in args.sizes:
        current = make_frame(size, 1, shift=0.5)
        floor_s = best_of(args.repeat, functools.partial(floor, reference, current, schema, settings.sample_size))
        ours_s = best_of(args.repeat, functools.partial(compute_drift, reference, current, schema, settings, 0.3))
        report_s = best_of(1, functools.partial(report, reference, current, schema, settings.sample_size))
        ours = compute_drift(reference, current, schema, settings, 0.3)
        print(f"{size:>9} {floor_s:>8.3f} {ours_s:>12.3f} {ours_s / floor_s:>5.1f}× {report_s:>9.2f} "
              f"{report_s / floor_s:>5.0f}×  {len(ours.drifted_features)}/{floor(reference, current, schema, settings.sample_size)}")


if __name__ == "__main__":
    main()
