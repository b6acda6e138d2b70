"""Validation of a batch held as a Spark DataFrame, for batches larger than one machine's memory.

The same structural checks and the same suite file as the pandas path, with the expectations run
by Great Expectations' Spark datasource: every check is a Spark job over the whole batch, nothing
is collected to the driver but aggregates. Row-level quarantine needs every failing row's index on
the driver, so on Spark the batch is judged whole.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.core.schema import BatchSchema
from retrainer.spark.columns import is_numeric, type_name, validation_view
from retrainer.validation.runner import ValidationOutcome, parse_suite, quiet_context, read_result
from retrainer.validation.structure import StructureReport, check_columns
from retrainer.validation.suites import load_suite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def check_spark_structure(frame: DataFrame, schema: BatchSchema, now: datetime | None = None) -> StructureReport:
    """``check_structure``'s findings, worded the same, from aggregates computed by Spark."""
    from pyspark.sql import functions as F

    report = StructureReport()
    check_columns(list(frame.columns), schema, report)
    present = set(frame.columns)
    aggregates: list[Column] = [F.count(F.lit(1)).alias("__rows")]
    numeric = [name for name in schema.numeric if name in present]
    for i, name in enumerate(numeric):
        column = F.col(name)
        if not is_numeric(frame, name):
            unparsed = column.isNotNull() & column.cast("double").isNull()
            aggregates += [F.count(F.when(unparsed, 1)).alias(f"__bad{i}"),
                           F.first(F.when(unparsed, column), ignorenulls=True).alias(f"__example{i}")]
        number = column.cast("double")
        aggregates.append(F.count(F.when(number.isin(float("inf"), float("-inf")), 1)).alias(f"__inf{i}"))
    if schema.target in present:
        aggregates.append(F.count(F.when(F.col(schema.target).isNull(), 1)).alias("__unlabelled"))
    time_column = schema.time_column if schema.time_column in present else None
    if time_column:
        aggregates.append(F.max(_timestamp(frame, time_column)).alias("__latest"))
        now = now or datetime.now(UTC)
        future = _timestamp(frame, time_column) > F.lit(now)  # an aware datetime: compared as an instant
        aggregates.append(F.count(F.when(future, 1)).alias("__future"))
    row = frame.select(aggregates).first()
    assert row is not None  # an aggregate without grouping always has one row
    for i, name in enumerate(numeric):
        bad = row[f"__bad{i}"] if not is_numeric(frame, name) else 0
        if bad:
            report.not_numbers(name, bad, row[f"__example{i}"])
            continue
        if row[f"__inf{i}"]:
            report.infinite(name, row[f"__inf{i}"])
    if schema.id_column and schema.id_column in present:
        ids = F.col(schema.id_column)
        repeated = (frame.where(ids.isNotNull()).groupBy(ids).count().where(F.col("count") > 1)
                    .agg(F.sum("count").alias("rows"), F.first(schema.id_column).alias("example")).first())
        if repeated is not None and repeated["rows"]:
            report.shared_ids(schema.id_column, repeated["rows"], repeated["example"])
    if schema.target in present and row["__unlabelled"]:
        report.unlabelled(schema.target, row["__unlabelled"], row["__rows"])
    if time_column and row["__future"]:
        report.future_times(time_column, row["__future"], row["__latest"].isoformat())
    return report


def _timestamp(frame: DataFrame, name: str) -> Column:
    """A time column as a timestamp: Spark timestamps as they are, text parsed, numbers as epoch
    seconds (or milliseconds when too large for seconds, as ``schema.parse_times`` reads them)."""
    from pyspark.sql import functions as F

    column = F.col(name)
    kind = type_name(frame, name)
    if kind in ("TimestampType", "TimestampNTZType", "DateType"):
        return column.cast("timestamp")
    if is_numeric(frame, name):
        seconds = F.when(F.abs(column) > 1e11, column / 1000).otherwise(column)
        return F.timestamp_seconds(seconds)
    return F.to_timestamp(column)


@functools.cache
def _spark_batch_definition() -> Any:
    """One ephemeral GE context with a Spark datasource per process, made on first use."""
    asset = quiet_context().data_sources.add_spark("retrainer-spark").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole batch")


def validate_spark_batch(frame: DataFrame, schema: BatchSchema, suite_path: Path) -> ValidationOutcome:
    """Structural checks, then the suite on disk through GE's Spark datasource: accepted or
    rejected with the same one-line reasons as ``validate_batch`` gives on a pandas frame."""
    structure = check_spark_structure(frame, schema)
    if structure.failures:
        return ValidationOutcome.structurally_broken(structure)
    suite_json = load_suite(suite_path)
    suite = parse_suite(suite_json, suite_path)
    # One Spark job per group of expectations: cached, the converted batch is read once.
    view = validation_view(frame, schema).cache()
    try:
        batch = _spark_batch_definition().get_batch(batch_parameters={"dataframe": view})
        result = batch.validate(suite, result_format="SUMMARY")
    finally:
        view.unpersist()
    return read_result(result, suite_json, structure.notices, set(frame.columns))
