"""A Spark session and batch reading for the Spark path (``retrainer check-large``).

Spark is an optional extra (``pip install 'retrainer[spark]'``, Java 17 on the PATH): nothing here
is imported by the pandas pipeline.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from retrainer.data.batches import BatchReadError
from retrainer.errors import UserError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkUnavailable(UserError):
    """pyspark or Java is missing; the message says what to install."""


def spark_session(master: str | None = None, app_name: str = "retrainer", verbose: bool = False) -> SparkSession:
    """The active Spark session, else a new one on `master` (default ``local[*]``: every core of
    this machine). A local session listens on loopback only and shows no UI; without `verbose`, the
    driver logs errors only and draws no progress bars."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable("the Spark path needs pyspark: pip install 'retrainer[spark]' "
                               "(and Java 17 on the PATH)") from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName(app_name).master(master or "local[*]")
    if (master or "local").startswith("local"):
        builder = (builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8"))
    # pandas frames (the champion's reference) cross into Spark through Arrow, not row by row.
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    if not verbose:
        # Read when the driver's JVM starts, so before its first log line.
        quiet = files("retrainer").joinpath("spark-log4j2.properties")
        builder = (builder.config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{quiet}"))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # Java missing or too old: py4j's gateway error is pages long
        raise SparkUnavailable(f"could not start Spark ({str(exc).splitlines()[0][:200]}); "
                               "is Java 17 installed and on the PATH?") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def read_spark_batch(spark: SparkSession, location: str) -> DataFrame:
    """A CSV (with a header row) or parquet file or folder, on any filesystem Spark reads (local,
    hdfs://, s3a://); the format is taken from the name, a folder without a suffix is parquet."""
    from pyspark.errors import AnalysisException

    name = location.rstrip("/").lower()
    try:
        if name.endswith(".csv"):
            return spark.read.csv(location, header=True, inferSchema=True)
        return spark.read.parquet(location)
    except AnalysisException as exc:
        raise BatchReadError(f"{location}: {str(exc).splitlines()[0][:200]}") from None
