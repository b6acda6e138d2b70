"""`retrainer check-large`: validate a batch too large for pandas and measure its drift, on Spark.

A dry run, like ``suite check``: the suite on disk through Great Expectations' Spark datasource,
then (for an accepted batch) drift against @champion's training data on Evidently's Spark engine.
Nothing is recorded, moved or trained; an upstream Spark job uses the verdict to decide whether
the batch (or a sample of it) goes on to ``retrainer run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrainer.config import RetrainerConfig
from retrainer.core.schema import feature_frame, schema_from_settings
from retrainer.monitoring.drift import DriftResult
from retrainer.registry import ModelRegistry, connect
from retrainer.spark.drift import check_spark_stattests, spark_drift
from retrainer.spark.session import read_spark_batch, spark_session
from retrainer.spark.validation import validate_spark_batch
from retrainer.state import stores
from retrainer.validation import ValidationOutcome, load_suite


@dataclass
class LargeBatchCheck:
    """What `check-large` found on one batch: its location, rows and validation outcome, and its drift
    against the @champion named (None when it was not measured)."""

    batch: str
    rows: int
    validation: ValidationOutcome
    # None when the batch was rejected (drift is not measured on rejected data) or there is no champion.
    drift: DriftResult | None
    champion_version: str | None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as `retrainer check-large --json` prints it."""
        return {
            "batch": self.batch, "rows": self.rows, "accepted": self.validation.valid,
            "failures": self.validation.failures, "warnings": self.validation.warnings,
            "champion_version": self.champion_version,
            "drift": None if self.drift is None else {
                "share": self.drift.share, "dataset_drift": self.drift.dataset_drift,
                "drifted_features": self.drift.drifted_features,
                "features": [vars(f) for f in self.drift.features]},
        }


def check_large_batch(config: RetrainerConfig, location: str, master: str | None = None,
                      drift: bool = True, verbose: bool = False) -> LargeBatchCheck:
    """Validate the batch at `location` with Spark and, when accepted, measure its drift against
    @champion's training data."""
    schema = schema_from_settings(stores.with_saved_columns(config).model)
    load_suite(config.suite_path)  # a broken suite file is one line, before Spark starts
    check_spark_stattests(config.drift)
    spark = spark_session(master, verbose=verbose)
    frame = read_spark_batch(spark, location)
    outcome = validate_spark_batch(frame, schema, config.suite_path)
    rows = frame.count()
    if not outcome.valid or not drift:
        return LargeBatchCheck(location, rows, outcome, None, None)
    registry = ModelRegistry(connect(config), config)
    champion = registry.champion()
    if champion is None:
        outcome.warnings.append("no @champion yet: drift not measured (run `retrainer init` first)")
        return LargeBatchCheck(location, rows, outcome, None, None)
    reference = spark.createDataFrame(feature_frame(registry.load_reference(champion), schema))
    result = spark_drift(reference, frame, schema, config.drift, config.policy.drift_share_threshold)
    return LargeBatchCheck(location, rows, outcome, result, champion.version)
