"""Column conversions on Spark DataFrames that mirror ``retrainer.core.schema``'s pandas ones, so a batch
reads the same to the suite and to the drift tests whichever engine holds it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.core.schema import BatchSchema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

NUMERIC_TYPES = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType")
# What ``schema.feature_frame`` writes for a missing category.
MISSING_CATEGORY = "<missing>"


def type_name(frame: DataFrame, name: str) -> str:
    """The Spark type of a column, by its class name (`LongType`, `StringType`, ...)."""
    return type(frame.schema[name].dataType).__name__


def is_numeric(frame: DataFrame, name: str) -> bool:
    """Whether a column is of one of Spark's numeric types."""
    return type_name(frame, name) in NUMERIC_TYPES


def as_text(frame: DataFrame, name: str) -> Column:
    """Values as text, whole numbers without '.0' (as the pandas path writes them), missing as null."""
    from pyspark.sql import functions as F

    column = F.col(name)
    if type_name(frame, name) in ("FloatType", "DoubleType", "DecimalType"):
        whole = column == F.floor(column)
        return F.when(whole, column.cast("long").cast("string")).otherwise(column.cast("string"))
    return column.cast("string")


def validation_view(frame: DataFrame, schema: BatchSchema) -> DataFrame:
    """``schema.validation_view`` on Spark: numbers as doubles (a value that does not parse becomes
    null), categories and classes as text; other columns as they are."""
    from pyspark.sql import functions as F

    text = {*schema.categorical, *([schema.target] if schema.task == "classification" else [])}
    columns = []
    for name in frame.columns:
        if name in schema.numeric:
            columns.append(F.col(name).cast("double").alias(name))
        elif name in text:
            columns.append(as_text(frame, name).alias(name))
        else:
            columns.append(F.col(name))
    return frame.select(columns)


def feature_frame(frame: DataFrame, schema: BatchSchema) -> DataFrame:
    """``schema.feature_frame`` on Spark: the features only, numbers as doubles, categories as text
    with a missing value as its own category."""
    from pyspark.sql import functions as F

    return frame.select([
        F.col(name).cast("double").alias(name) if name in schema.numeric
        else F.coalesce(as_text(frame, name), F.lit(MISSING_CATEGORY)).alias(name)
        for name in schema.features
    ])
