"""Speed of batch validation (structural checks + the drafted Great Expectations suite).

Drafts the suite from a 10k-row reference of the demo scenario (10 features), then validates
batches of 10k, 100k and 1M rows, after one warm-up run. Prints seconds and rows per second,
and the ratio to the 10k run.

    python benchmarks/validation_speed.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from retrainer.config import ModelSettings
from retrainer.core.schema import infer_schema
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch
from retrainer.validation import draft_suite, save_suite, validate_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    stable = ScriptedBatch("b", "stable", "none")
    reference = make_batch(stable, 0, 10_000, np.random.default_rng(0))
    schema = infer_schema(reference, ModelSettings(name="bench", target=TARGET))
    suite = draft_suite(reference, schema, "bench")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.json"
        save_suite(suite, path)
        validate_batch(reference, schema, path)  # warm-up: GE context and imports
        print(f"suite: {len(suite['expectations'])} expectations, {len(schema.features)} features")
        print(f"{'rows':>10} {'seconds':>8} {'rows/s':>12} {'vs first':>9}  outcome")
        first = None
        for size in args.sizes:
            batch = make_batch(stable, 1, size, np.random.default_rng(size))
            started = time.perf_counter()
            outcome = validate_batch(batch, schema, path)
            seconds = time.perf_counter() - started
            first = first or seconds
            print(f"{size:>10} {seconds:>8.2f} {size / seconds:>12,.0f} {seconds / first:>8.1f}×  "
                  f"{'accepted' if outcome.valid else 'REJECTED'} ({len(outcome.warnings)} warning(s))")


if __name__ == "__main__":
    main()
