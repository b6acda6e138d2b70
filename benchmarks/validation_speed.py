"""Speed of batch validation (structural checks + the drafted Great Expectations suite).

Drafts the suite from a 10k-row reference of the demo scenario (10 features), then validates
batches of 10k, 100k and 1M rows, after one warm-up run. Prints, per size, the project's validation
(structural checks + the suite in two passes: GE's BOOLEAN_ONLY, then the failed expectations in SUMMARY),
the same with one SUMMARY pass (as before issue 18), and GE's BOOLEAN_ONLY pass alone, in seconds, with
rows per second and the ratio to the first size; then the same on a broken batch (°F temperatures, so a
few expectations fail and the second pass has work).

    python benchmarks/validation_speed.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

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
        print(f"{'rows':>10} {'batch':>7} {'two-pass':>9} {'one-pass':>9} {'BOOLEAN':>8} {'rows/s':>11} "
              f"{'vs first':>9}  outcome")
        first = None
        for size in args.sizes:
            for broken in (False, True):
                batch = make_batch(stable, 1, size, np.random.default_rng(size))
                if broken:
                    batch["temperature_c"] = batch["temperature_c"] * 1.8 + 32
                timings = {}
                for name, two_pass in (("two", True), ("one", False)):
                    started = time.perf_counter()
                    outcome = validate_batch(batch, schema, path, two_pass=two_pass)
                    timings[name] = time.perf_counter() - started
                timings["boolean"] = _boolean_only(batch, schema, path)
                first = first or timings["two"]
                print(f"{size:>10} {'broken' if broken else 'stable':>7} {timings['two']:>9.2f} {timings['one']:>9.2f} "
                      f"{timings['boolean']:>8.2f} {size / timings['two']:>11,.0f} {timings['two'] / first:>8.1f}×  "
                      f"{'accepted' if outcome.valid else 'REJECTED'} ({len(outcome.failures)} failure(s), "
                      f"{len(outcome.warnings)} warning(s))")


def _boolean_only(batch: Any, schema: Any, path: Path) -> float:
    """Seconds of GE's BOOLEAN_ONLY pass alone over the whole suite, on the typed view the pipeline validates."""
    from retrainer.core.schema import validation_view
    from retrainer.validation.runner import _batch_definition, parse_suite
    from retrainer.validation.suites import load_suite

    suite = parse_suite(load_suite(path), path)
    view = validation_view(batch, schema)
    started = time.perf_counter()
    _batch_definition().get_batch(batch_parameters={"dataframe": view}).validate(suite, result_format="BOOLEAN_ONLY")
    return time.perf_counter() - started

if __name__ == "__main__":
    main()
