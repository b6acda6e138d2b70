"""Speed of batch validation (structural checks + the drafted Great Expectations suite).

Drafts the suite from a 10k-row reference of the demo scenario (10 features), then validates
batches of 10k, 100k and 1M rows, after one warm-up run. Prints, per size, the project's validation
(structural checks + the suite with each expectation on the columns it reads, in two passes: GE's
BOOLEAN_ONLY, then the failed expectations in SUMMARY), GE's one SUMMARY pass over the whole table (as
before issue 18), GE's BOOLEAN_ONLY pass alone over the whole table, and a floor: the same
checks written in plain numpy/pandas (only for this measurement; it must agree with GE on which expectations
fail, or the run stops), in seconds, with the project's rows per second, its ratio to the floor and to the
first size; then the same on a broken batch (°F temperatures, so a few expectations fail and the second pass
has work).

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
        print(f"{'rows':>10} {'batch':>7} {'ours':>9} {'one-pass':>9} {'BOOLEAN':>8} {'numpy':>7} "
              f"{'vs numpy':>9} {'rows/s':>11} {'vs first':>9}  outcome")
        first = None
        for size in args.sizes:
            for broken in (False, True):
                batch = make_batch(stable, 1, size, np.random.default_rng(size))
                if broken:
                    batch["temperature_c"] = batch["temperature_c"] * 1.8 + 32
                timings = {}
                for name, two_pass in (("two", True), ("one", False)):
                    started = time.perf_counter()
                    outcome = validate_batch(batch, schema, path, fast=two_pass)
                    timings[name] = time.perf_counter() - started
                timings["boolean"], failed_in_ge = boolean_only(batch, schema, path)
                timings["numpy"], failed_in_numpy = numpy_floor(batch, schema, suite)
                if failed_in_numpy != failed_in_ge:
                    raise SystemExit(f"the numpy floor disagrees with GE: {failed_in_numpy ^ failed_in_ge}")
                first = first or timings["two"]
                print(f"{size:>10} {'broken' if broken else 'stable':>7} {timings['two']:>9.2f} {timings['one']:>9.2f} "
                      f"{timings['boolean']:>8.2f} {timings['numpy']:>7.2f} {timings['two'] / timings['numpy']:>8.1f}× "
                      f"{size / timings['two']:>11,.0f} {timings['two'] / first:>8.1f}×  "
                      f"{'accepted' if outcome.valid else 'REJECTED'} ({len(outcome.failures)} failure(s), "
                      f"{len(outcome.warnings)} warning(s))")


def boolean_only(batch: Any, schema: Any, path: Path) -> tuple[float, set[int]]:
    """Seconds of GE's BOOLEAN_ONLY pass alone over the whole suite, on the typed view the pipeline validates,
    and the positions (in the suite) of the expectations that failed."""
    from retrainer.core.schema import typed_view
    from retrainer.validation.runner import _batch_definition, _key, parse_suite
    from retrainer.validation.suites import load_suite

    suite_json = load_suite(path)
    suite = parse_suite(suite_json, path)
    view = typed_view(batch, schema)
    started = time.perf_counter()
    result = _batch_definition().get_batch(batch_parameters={"dataframe": view}).validate(
        suite, result_format="BOOLEAN_ONLY")
    seconds = time.perf_counter() - started
    position = {_key(expectation.configuration): i for i, expectation in enumerate(suite.expectations)}
    return seconds, {position[_key(item.expectation_config)] for item in result.results if not item.success}


def numpy_floor(batch: Any, schema: Any, suite: dict[str, Any]) -> tuple[float, set[int]]:
    """The drafted suite's checks in plain numpy/pandas on the same typed view: what the checks themselves
    cost without an expectation engine (the floor of issue 18). Returns seconds and the failing positions."""
    from retrainer.core.schema import typed_view

    view = typed_view(batch, schema)
    started = time.perf_counter()
    failed = {i for i, expectation in enumerate(suite["expectations"]) if not _holds(view, expectation)}
    return time.perf_counter() - started, failed


def _holds(frame: Any, expectation: dict[str, Any]) -> bool:
    kind, kwargs = expectation["type"], expectation["kwargs"]
    if kind in _TABLE_CHECKS:
        return _TABLE_CHECKS[kind](frame, kwargs)
    column = kwargs.get("column")
    if column not in frame.columns:
        return False
    values = frame[column]
    present = values.dropna()
    mostly = kwargs.get("mostly", 1.0)
    if kind == "expect_column_values_to_not_be_null":
        return bool(values.notna().mean() >= mostly)
    if kind == "expect_column_mean_to_be_between":
        return _within(float(present.mean()), kwargs)
    if kind == "expect_column_unique_value_count_to_be_between":
        return _within(int(present.nunique()), kwargs)
    if present.empty:
        return True
    if kind == "expect_column_values_to_be_between":
        array = present.to_numpy(dtype=float)
        inside = np.ones(len(array), dtype=bool)
        if kwargs.get("min_value") is not None:
            inside &= array >= kwargs["min_value"]
        if kwargs.get("max_value") is not None:
            inside &= array <= kwargs["max_value"]
        return bool(inside.mean() >= mostly)
    if kind == "expect_column_values_to_be_in_set":
        return bool(present.isin(kwargs["value_set"]).mean() >= mostly)
    if kind == "expect_column_values_to_not_be_in_set":
        return bool((~present.isin(kwargs["value_set"])).mean() >= mostly)
    raise SystemExit(f"the numpy floor has no {kind}: add it to compare")


def _compound_unique(frame: Any, kwargs: dict[str, Any]) -> bool:
    keys = frame[kwargs["column_list"]]
    judged = keys[keys.notna().any(axis=1)]  # GE's default: rows missing every value are ignored
    return bool(1 - judged.duplicated(keep=False).mean() >= kwargs.get("mostly", 1.0)) if len(judged) else True


_TABLE_CHECKS = {
    "expect_table_row_count_to_be_between": lambda frame, kwargs: _within(len(frame), kwargs),
    "expect_column_to_exist": lambda frame, kwargs: kwargs["column"] in frame.columns,
    "expect_compound_columns_to_be_unique": _compound_unique,
}


def _within(value: float, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (low is None or value >= low) and (high is None or value <= high)

if __name__ == "__main__":
    main()
