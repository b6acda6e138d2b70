"""Drift of a batch held as a Spark DataFrame, on Evidently's Spark engine.

Evidently 0.7 keeps its Spark engine in ``evidently.legacy`` (``Report(...).run(engine=
SparkEngine)``), with four stat tests: chisquare, jensenshannon, psi and wasserstein. As the
pandas path does, the decision calls the engine's stat tests directly: the report adds plots,
which on Spark are several more jobs per column (about 4 s per column in local mode). The
defaults match the pandas path's above 1,000 reference rows (normed Wasserstein for numbers,
Jensen-Shannon for categories): distances, which do not saturate with n, so the Spark path runs
on the whole batch rather than on a sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.config import ConfigError, DriftSettings
from retrainer.core.schema import BatchSchema
from retrainer.monitoring.drift import DriftResult, FeatureDrift
from retrainer.spark.columns import feature_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPARK_STATTESTS = ("chisquare", "jensenshannon", "psi", "wasserstein")


def check_spark_stattests(settings: DriftSettings) -> None:
    """A stat test Evidently's Spark engine lacks is a one-line error before any Spark job runs."""
    unsupported = {column: name for column, name in settings.stattests.items() if name not in SPARK_STATTESTS}
    if unsupported:
        named = ", ".join(f"{column}: {name}" for column, name in sorted(unsupported.items()))
        raise ConfigError(f"drift.stattests: Evidently's Spark engine has no {named}; "
                          f"it has {', '.join(SPARK_STATTESTS)}")


def spark_drift(reference: DataFrame, current: DataFrame, schema: BatchSchema, settings: DriftSettings,
                share_threshold: float) -> DriftResult:
    """Per-feature drift of `current` against `reference` (Spark DataFrames holding the schema's
    features, converted as the model sees them) and the drifted share, as ``compute_drift`` reports it."""
    from evidently.legacy.core import ColumnType
    from evidently.legacy.spark.calculations.stattests.base import get_stattest
    from evidently.legacy.spark.engine import SparkEngine
    from pyspark.sql import functions as F

    check_spark_stattests(settings)
    columns = list(schema.features)
    missing = [c for c in columns if c not in current.columns or c not in reference.columns]
    if missing:
        raise ConfigError(f"drift on Spark: feature column(s) {', '.join(missing)} missing from the batch or "
                          "the reference")
    # Each stat test is a few Spark jobs per column (a deviation, histograms): without a cache each
    # one would read and convert the batch again. Spark spills what does not fit in memory.
    reference_view = feature_frame(reference, schema).cache()
    current_view = feature_frame(current, schema).cache()
    try:
        # Values present per column on each side, in one job each (and the batch's row count).
        counted = [F.count(F.col(c)).alias(c) for c in columns] + [F.count(F.lit(1)).alias("__rows")]
        present_reference, present_current = reference_view.select(counted).first(), current_view.select(counted).first()
        assert present_reference is not None
        assert present_current is not None
        features = []
        for column in columns:
            threshold = settings.thresholds.get(column)
            if not present_reference[column] or not present_current[column]:
                # As the pandas path: nothing to compare on one side is drift unless both are empty.
                features.append(FeatureDrift(column, "none", float("nan"), threshold or 0.0,
                                             drifted=bool(present_reference[column] or present_current[column])))
                continue
            kind = ColumnType.Categorical if column in schema.categorical else ColumnType.Numerical
            ref = reference_view.select(column).na.drop()
            cur = current_view.select(column).na.drop()
            test = get_stattest(ref, cur, kind, settings.stattests.get(column))
            result = test(ref, cur, kind, threshold, engine=SparkEngine, column_name=column)
            features.append(FeatureDrift(column, test.name, float(result.drift_score), float(result.actual_threshold),
                                         bool(result.drifted)))
    finally:
        reference_view.unpersist()
        current_view.unpersist()
    share = sum(f.drifted for f in features) / len(features)
    return DriftResult(features=features, share=share, dataset_drift=share > share_threshold,
                       sample_rows=int(present_current["__rows"]))
