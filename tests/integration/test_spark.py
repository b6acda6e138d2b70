"""Batches larger than memory: validation through Great Expectations' Spark datasource and drift on
Evidently's Spark engine, in Spark local mode, judged against the pandas path on the same data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.config import DriftSettings, ModelSettings
from retrainer.core.schema import BatchSchema, feature_frame, infer_schema
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch
from retrainer.validation import draft_suite, save_suite, validate_batch

from .conftest import initialise_model


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module (starting one costs seconds); skipped where pyspark or
    Java is missing, except under CI=true."""
    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "pyspark is not installed (pip install -e '.[spark]')"
    if missing is None and shutil.which("java") is None:
        missing = "no java on the PATH (Spark needs Java 17)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Spark tests must run under CI=true: {missing}")
        pytest.skip(missing)
    from retrainer.spark.session import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


def _batches(rows: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    reference = make_batch(ScriptedBatch("b1", "stable", "init"), 0, rows, rng)
    current = make_batch(ScriptedBatch("b2", "stable", "none"), 1, rows, rng)
    return reference, current


def _schema(reference: pd.DataFrame) -> BatchSchema:
    return infer_schema(reference, ModelSettings(name="pumps", target=TARGET))


def _spark_frame(spark: Any, frame: pd.DataFrame, tmp_path: Path, name: str) -> Any:
    """The frame as Spark reads it from a CSV file, as a batch arrives."""
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    from retrainer.spark.session import read_spark_batch

    return read_spark_batch(spark, str(path)), pd.read_csv(path)


def test_spark_validation_gives_the_pandas_verdicts_and_reasons(spark: Any, tmp_path: Path) -> None:
    """A clean batch is accepted; a broken one is rejected with the reasons the pandas path gives,
    from structural checks (text in a number column, an infinity, a repeated id) and from the suite."""
    from retrainer.spark.validation import validate_spark_batch

    reference, current = _batches()
    schema = _schema(reference)
    suite = tmp_path / "suite.json"
    save_suite(draft_suite(reference, schema, "pumps"), suite)

    clean, clean_pandas = _spark_frame(spark, current, tmp_path, "clean")
    outcome = validate_spark_batch(clean, schema, suite)
    assert outcome.valid, outcome.failures
    assert outcome.valid == validate_batch(clean_pandas, schema, suite).valid

    broken = current.copy()
    broken["pressure_bar"] = broken["pressure_bar"].astype(object)
    broken.loc[:4, "pressure_bar"] = "sensor-off"
    broken.loc[9, "rpm"] = np.inf
    broken.loc[20, "reading_id"] = broken.loc[21, "reading_id"]
    frame, frame_pandas = _spark_frame(spark, broken, tmp_path, "broken")
    outcome = validate_spark_batch(frame, schema, suite)
    assert not outcome.valid
    assert outcome.failures == validate_batch(frame_pandas, schema, suite).failures
    assert outcome.failures == ["column 'pressure_bar': 5 value(s) are not numbers (e.g. 'sensor-off')",
                                "column 'rpm': 1 infinite value(s)",
                                f"column 'reading_id': 2 rows share an id (e.g. '{broken.loc[21, 'reading_id']}')"]

    # The suite's own checks: a category never seen and most of a column far out of its range.
    odd = current.copy()
    odd.loc[:, "machine_type"] = "turbine-x"
    odd["temperature_c"] = odd["temperature_c"] * 100
    frame, frame_pandas = _spark_frame(spark, odd, tmp_path, "odd")
    outcome = validate_spark_batch(frame, schema, suite)
    assert not outcome.valid
    assert outcome.failures == validate_batch(frame_pandas, schema, suite).failures
    assert any("machine_type" in f for f in outcome.failures)
    assert any("temperature_c" in f for f in outcome.failures)

    frame, frame_pandas = _spark_frame(spark, current.drop(columns=["flow_m3h"]), tmp_path, "narrow")
    outcome = validate_spark_batch(frame, schema, suite)
    assert outcome.failures == validate_batch(frame_pandas, schema, suite).failures
    assert outcome.failures == ["missing required column(s): flow_m3h"]


def test_spark_drift_flags_the_columns_the_pandas_path_flags(spark: Any, tmp_path: Path) -> None:
    """Evidently's Spark engine on the whole batch: the shifted columns drift, the others do not, as
    the pandas path (Evidently's stat tests on the same rows) says; the distances agree closely."""
    from retrainer.monitoring import compute_drift
    from retrainer.spark.drift import spark_drift

    reference, current = _batches(3000)
    schema = _schema(reference)
    current = current.copy()
    current["temperature_c"] += 12.0
    current["site"] = np.where(np.arange(len(current)) % 3 == 0, current["site"], "north")
    settings = DriftSettings(sample_size=10_000)
    on_spark = spark_drift(spark.createDataFrame(feature_frame(reference, schema)),
                           spark.createDataFrame(feature_frame(current, schema)), schema, settings, 0.3)
    on_pandas = compute_drift(feature_frame(reference, schema), feature_frame(current, schema), schema, settings, 0.3)
    assert set(on_spark.drifted_features) == {"temperature_c", "site"}
    assert on_spark.drifted_features == on_pandas.drifted_features
    for ours, theirs in zip(on_spark.features, on_pandas.features, strict=True):
        assert ours.stattest == theirs.stattest
        assert ours.score == pytest.approx(theirs.score, abs=0.03), ours.column
    assert on_spark.sample_rows == 3000


def test_check_large_command_on_a_parquet_folder(spark: Any, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`retrainer check-large` on a parquet folder written by Spark: accepted with drift measured
    against @champion's training data; a broken CSV exits 1 with its reasons; a stat test the Spark
    engine lacks is a one-line error."""
    import json

    import yaml

    from retrainer.cli import main

    reference, current = _batches()
    first = tmp_path / "b1.csv"
    reference.to_csv(first, index=False)
    config = initialise_model(tmp_path, {}, first)

    shifted = current.copy()
    shifted["vibration_mm_s"] *= 2.0
    folder = tmp_path / "lake" / "b2"
    spark.createDataFrame(shifted).repartition(3).write.parquet(str(folder))
    assert main(["check-large", "--config", str(config), str(folder), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["accepted"]
    assert verdict["rows"] == len(shifted)
    assert verdict["champion_version"] == "1"
    assert verdict["drift"]["drifted_features"] == ["vibration_mm_s"]

    broken = current.copy()
    broken.loc[3, "rpm"] = np.inf
    broken.to_csv(tmp_path / "broken.csv", index=False)
    assert main(["check-large", "--config", str(config), str(tmp_path / "broken.csv")]) == 1
    out = capsys.readouterr().out
    assert "REJECTED" in out
    assert "column 'rpm': 1 infinite value(s)" in out
    assert "drift" not in out

    settings = yaml.safe_load(config.read_text())
    settings["drift"] = {"stattests": {"rpm": "ks"}}
    config.write_text(yaml.safe_dump(settings))
    assert main(["check-large", "--config", str(config), str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("retrainer: error: drift.stattests: Evidently's Spark engine has no rpm: ks; "
                   "it has chisquare, jensenshannon, psi, wasserstein")
