"""Drift of a batch held as a Spark DataFrame, on Evidently's Spark engine.

Evidently 0.7 keeps its Spark engine in ``evidently.legacy`` (the ``Report(...).run(engine=
SparkEngine)`` API), with four stat tests: chisquare, jensenshannon, psi and wasserstein. Its
defaults match the pandas path's above 1,000 reference rows (normed Wasserstein for numbers,
Jensen-Shannon for categories): distances, which do not saturate with n, so the Spark path runs
on the whole batch rather than on a sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.config import ConfigError, DriftSettings
from retrainer.monitoring.drift import DriftResult, FeatureDrift
from retrainer.schema import BatchSchema
from retrainer.spark_columns import feature_frame

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


def _stattest_names() -> dict[str, str]:
    """Evidently's display names ('Wasserstein distance (normed)') back to the names the config and
    the pandas path's records use ('wasserstein')."""
    from evidently.legacy.calculations.stattests import registry

    names: dict[str, str] = {}
    for name, by_type in getattr(registry, "_registered_stat_tests", {}).items():
        for test in by_type.values():
            names.setdefault(test.display_name, name)
    return names


def spark_drift(reference: DataFrame, current: DataFrame, schema: BatchSchema, settings: DriftSettings,
                share_threshold: float) -> DriftResult:
    """Per-feature drift of `current` against `reference` (Spark DataFrames holding the schema's
    features, converted as the model sees them) and the drifted share, as ``compute_drift`` reports it."""
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report
    from evidently.legacy.spark.engine import SparkEngine
    check_spark_stattests(settings)
    columns = list(schema.features)
    missing = [c for c in columns if c not in current.columns or c not in reference.columns]
    if missing:
        raise ConfigError(f"drift on Spark: feature column(s) {', '.join(missing)} missing from the batch or "
                          "the reference")

    report = Report(metrics=[DataDriftTable(columns=columns, per_column_stattest=dict(settings.stattests) or None,
                                            per_column_stattest_threshold=dict(settings.thresholds) or None)])
    report.run(reference_data=feature_frame(reference, schema),
               current_data=feature_frame(current, schema),
               column_mapping=ColumnMapping(numerical_features=list(schema.numeric),
                                            categorical_features=list(schema.categorical),
                                            target=None, prediction=None, datetime=None, id=None),
               engine=SparkEngine)
    by_column = report.as_dict()["metrics"][0]["result"]["drift_by_columns"]
    names = _stattest_names()
    features = [
        FeatureDrift(column, names.get(by_column[column]["stattest_name"], by_column[column]["stattest_name"]),
                     float(by_column[column]["drift_score"]), float(by_column[column]["stattest_threshold"]),
                     bool(by_column[column]["drift_detected"]))
        for column in columns
    ]
    share = sum(f.drifted for f in features) / len(features)
    return DriftResult(features=features, share=share, dataset_drift=share > share_threshold,
                       sample_rows=current.count())
