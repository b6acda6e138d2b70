"""Great Expectations on real batches: the drafted suite, severities, and edits on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.config import ModelSettings
from retrainer.core.schema import infer_schema
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch
from retrainer.validation import draft_suite, save_suite, validate_batch

pytestmark = pytest.mark.integration


@pytest.fixture
def reference() -> pd.DataFrame:
    return make_batch(ScriptedBatch("r", "stable", "init"), 0, 2000, np.random.default_rng(0))


def _batch(seed: int, **changes: object) -> pd.DataFrame:
    return make_batch(ScriptedBatch("b", "x", "x", **changes), 1, 2000, np.random.default_rng(seed))  # type: ignore[arg-type]


def _suite(reference: pd.DataFrame, tmp_path: Path, target: str = TARGET) -> tuple[Path, object]:
    schema = infer_schema(reference, ModelSettings(name="pumps", target=target))
    path = tmp_path / "pumps.json"
    save_suite(draft_suite(reference, schema, "pumps"), path)
    return path, schema


def test_a_fresh_stable_batch_passes_the_drafted_suite(reference: pd.DataFrame, tmp_path: Path) -> None:
    """A new batch from the same world passes every critical expectation of the drafted suite."""
    path, schema = _suite(reference, tmp_path)
    outcome = validate_batch(_batch(1), schema, path)  # type: ignore[arg-type]
    assert outcome.valid, outcome.failures


def test_fahrenheit_temperature_is_rejected_by_the_mean_check(reference: pd.DataFrame, tmp_path: Path) -> None:
    """A temperature column suddenly in °F fails the critical mean expectation, with the observed mean in the
    reason, and the critical range tier (most values out of the reference range); nothing else fails."""
    path, schema = _suite(reference, tmp_path)
    outcome = validate_batch(_batch(2, fahrenheit=True), schema, path)  # type: ignore[arg-type]
    assert not outcome.valid
    assert len(outcome.failures) == 2
    assert outcome.failures[0].startswith("expect_column_mean_to_be_between(temperature_c): observed 13")
    assert outcome.failures[1].startswith("expect_column_values_to_be_between(temperature_c):")


def test_a_unit_change_on_a_centred_column_is_rejected_by_the_range_check(tmp_path: Path) -> None:
    """×100 on a column centred on zero keeps its mean; most values leave the reference range and the batch
    is rejected. A 2-sd shift of the same column (real drift) is only a warning."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 2000), "z": rng.normal(0, 1, 2000), TARGET: [0, 1] * 1000})
    path, schema = _suite(frame, tmp_path)
    scaled, shifted = frame.assign(x=frame["x"] * 100), frame.assign(x=frame["x"] + 2)
    outcome = validate_batch(scaled, schema, path)  # type: ignore[arg-type]
    assert not outcome.valid
    assert [f.split(":")[0] for f in outcome.failures] == ["expect_column_values_to_be_between(x)"]
    outcome = validate_batch(shifted, schema, path)  # type: ignore[arg-type]
    assert outcome.valid
    assert any(w.startswith("expect_column_values_to_be_between(x)") for w in outcome.warnings)


def test_an_edit_on_disk_applies_to_the_next_validation(reference: pd.DataFrame, tmp_path: Path) -> None:
    """Turning the temperature checks' severity to 'warning' in the JSON file makes the same °F batch pass with
    a warning."""
    path, schema = _suite(reference, tmp_path)
    fahrenheit = _batch(3, fahrenheit=True)
    assert not validate_batch(fahrenheit, schema, path).valid  # type: ignore[arg-type]
    suite = json.loads(path.read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "temperature_c":
            expectation["severity"] = "warning"
    path.write_text(json.dumps(suite, indent=2))
    outcome = validate_batch(fahrenheit, schema, path)  # type: ignore[arg-type]
    assert outcome.valid
    assert any("temperature_c" in warning and "mean" in warning for warning in outcome.warnings)


def test_a_constant_reference_column_gets_no_mean_check(tmp_path: Path) -> None:
    """A column that never varied in the reference is checked by range only, so it cannot reject every batch."""
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50), "flag": 1.0, "y": [0, 1] * 25})
    schema = infer_schema(frame, ModelSettings(target="y"))
    suite = draft_suite(frame, schema, "m")
    kinds = {(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]}
    assert ("expect_column_mean_to_be_between", "flag") not in kinds
    assert ("expect_column_values_to_be_between", "flag") in kinds
    assert ("expect_column_mean_to_be_between", "x") in kinds


def test_drafted_bounds_keep_six_significant_digits_for_tiny_values(tmp_path: Path) -> None:
    """A column of values around 3e-8 gets bounds that its own reference passes."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tiny": rng.normal(3e-8, 1e-9, 200), "y": [0, 1] * 100})
    schema = infer_schema(frame, ModelSettings(target="y"))
    path = tmp_path / "m.json"
    save_suite(draft_suite(frame, schema, "m"), path)
    assert validate_batch(frame, schema, path).valid


def _census(rows: int, year: int, seed: int) -> pd.DataFrame:
    """A census-like batch: an integer year, an income, an age and a category, no id column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"year": year, "income": rng.lognormal(10, 0.5, rows).round(2),
                         "age": rng.integers(18, 90, rows), "region": rng.choice(["n", "s", "e", "w"], rows),
                         "y": rng.integers(0, 2, rows)})


def test_a_year_column_does_not_reject_a_later_year_but_units_still_do(tmp_path: Path) -> None:
    """The reference holds 2015 only: batches of 2016 and 2018 are accepted with no critical failure, while
    an income column in cents (×100) is still rejected."""
    reference = _census(2000, 2015, 0)
    path, schema = _suite(reference, tmp_path, "y")
    for year in (2016, 2018):
        outcome = validate_batch(_census(2000, year, year), schema, path)  # type: ignore[arg-type]
        assert outcome.valid, outcome.failures
    cents = _census(2000, 2016, 7).assign(income=lambda f: f["income"] * 100)
    outcome = validate_batch(cents, schema, path)  # type: ignore[arg-type]
    assert not outcome.valid
    assert {f.split(":")[0] for f in outcome.failures} == {"expect_column_mean_to_be_between(income)",
                                                            "expect_column_values_to_be_between(income)"}


def test_a_broken_export_without_ids_is_rejected_and_normal_batches_are_not(tmp_path: Path) -> None:
    """No id column: one row written 2,000 times is rejected as repeated rows, a single row where 2,000 are
    usual is rejected as too small, and an ordinary batch (even a small one) is accepted."""
    reference = _census(2000, 2015, 0)
    path, schema = _suite(reference, tmp_path, "y")
    repeated = pd.concat([_census(1, 2015, 3)] * 2000, ignore_index=True)
    outcome = validate_batch(repeated, schema, path)  # type: ignore[arg-type]
    assert not outcome.valid
    assert outcome.failures == ["expect_compound_columns_to_be_unique(income, age): 100.0% of rows repeat another "
                                "row, allowed 50.0%"]
    outcome = validate_batch(_census(1, 2015, 4), schema, path)  # type: ignore[arg-type]
    assert not outcome.valid
    assert outcome.failures == ["expect_table_row_count_to_be_between: observed 1, below the minimum 30"]
    assert validate_batch(_census(300, 2015, 5), schema, path).valid  # type: ignore[arg-type]


def test_small_batch_streams_and_categorical_data_get_checks_they_can_pass(tmp_path: Path) -> None:
    """A reference of 70 rows asks for 4 rows at least; an all-categorical reference, whose rows legitimately
    repeat, gets no duplicate check at all."""
    small = _census(70, 2015, 0)
    schema = infer_schema(small, ModelSettings(target="y"))
    suite = draft_suite(small, schema, "m")
    minimum = [e["kwargs"]["min_value"] for e in suite["expectations"]
               if e["type"] == "expect_table_row_count_to_be_between" and e["severity"] == "critical"]
    assert minimum == [4]
    rng = np.random.default_rng(1)
    categories = pd.DataFrame({"colour": rng.choice(["r", "g"], 500), "size": rng.choice(["s", "l"], 500),
                               "y": rng.integers(0, 2, 500)})
    schema = infer_schema(categories, ModelSettings(target="y"))
    kinds = [e["type"] for e in draft_suite(categories, schema, "m")["expectations"]]
    assert "expect_compound_columns_to_be_unique" not in kinds


def test_a_new_category_becoming_common_is_a_warning_and_broken_categories_reject(tmp_path: Path) -> None:
    """A new region on 40 % of rows beside the known four is accepted with a warning; the same share of
    'unknown' (a placeholder) is rejected, as are regions re-encoded in upper case. A reference that itself
    uses 'unknown' as a category keeps accepting it."""
    reference = _census(2000, 2015, 0)
    path, schema = _suite(reference, tmp_path, "y")
    rng = np.random.default_rng(9)

    def with_region(value: str, share: float) -> pd.DataFrame:
        batch = _census(2000, 2015, 8)
        batch.loc[rng.choice(len(batch), round(share * len(batch)), replace=False), "region"] = value
        return batch

    new_site = validate_batch(with_region("central", 0.4), schema, path)  # type: ignore[arg-type]
    assert new_site.valid, new_site.failures
    assert any(w.startswith("expect_column_values_to_be_in_set(region): 40.0% unexpected") for w in new_site.warnings)
    placeholder = validate_batch(with_region("unknown", 0.4), schema, path)  # type: ignore[arg-type]
    assert placeholder.failures == ["expect_column_values_to_not_be_in_set(region): 40.0% unexpected, allowed 10.0% "
                                    "(e.g. 'unknown')"]
    upper = validate_batch(_census(2000, 2015, 8).assign(region=lambda f: f["region"].str.upper()),  # type: ignore[arg-type]
                           schema, path)
    assert [f.split(":")[0] for f in upper.failures] == ["expect_column_values_to_be_in_set(region)"]

    own = _census(2000, 2015, 0)
    own.loc[:299, "region"] = "unknown"
    path, schema = _suite(own, tmp_path / "own", "y")
    assert validate_batch(with_region("unknown", 0.2), schema, path).valid  # type: ignore[arg-type]
