"""Drift of a batch against the champion's training reference, with Evidently's stat tests.

The decision uses Evidently's stat-test functions directly (they cost what scipy costs);
the full Evidently report, ~0.13 s per column, is rendered only when someone will read it.
Both pick the same test per column: Evidently's default for the column's type and the
reference size, unless the config names one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainer.config import ConfigError, DriftSettings
from retrainer.core.records import DriftSummary
from retrainer.core.schema import BatchSchema


@dataclass(frozen=True)
class FeatureDrift:
    """One column's drift: the stat test used, its score (a p-value or a distance, as the test gives),
    the threshold it was judged against, and the verdict."""

    column: str
    stattest: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    """A batch's drift against the reference: each feature's, the share that drifted, and whether that
    share makes it dataset drift; the drift of the predictions and labels when they were given."""

    features: list[FeatureDrift]
    share: float
    dataset_drift: bool
    prediction_drift: float | None = None
    prediction_drifted: bool | None = None
    # The label's distribution against the training labels, when the batch has labels.
    target_drift: FeatureDrift | None = None
    sample_rows: int = 0
    # Columns that grow with time (years, counters: core.profile.growing_columns): tested and scored like
    # the others, but a later year always "drifts" from the training years, so they count neither in
    # the share nor as drifted features; the performance rule judges whether the model keeps up.
    growing: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        """The names of the features that drifted (columns that grow with time aside)."""
        return [f.column for f in self.features if f.drifted and f.column not in self.growing]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data, for reports and artifacts."""
        return asdict(self)

    def summary_fields(self) -> DriftSummary:
        """What the cycle's record keeps of it."""
        return DriftSummary(self.share, self.drifted_features, self.prediction_drift,
                            {f.column: f.score for f in self.features},
                            self.target_drift.score if self.target_drift else None)


PREDICTION_STATTEST = {"classification": "jensenshannon", "regression": "wasserstein"}


def check_stattests(settings: DriftSettings, source: str = "config") -> None:
    """A misspelt stat test name fails when the config is loaded, not halfway through a cycle."""
    from evidently.legacy.calculations.stattests import registry

    # Evidently has no public list of its stat tests; without one (another Evidently), the
    # name is checked when the test is first used instead.
    known: dict[str, object] = getattr(registry, "_registered_stat_tests", {})
    for column, name in settings.stattests.items():
        if known and name not in known:
            raise ConfigError(f"{source}: setting 'drift.stattests.{column}': unknown stat test '{name}'; "
                              f"Evidently's are: {', '.join(sorted(known))}")


def sample(frame: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """A uniform sample of at most `size` rows: stat tests saturate (everything drifts) at large n."""
    return frame if len(frame) <= size else frame.sample(n=size, random_state=seed)


def _stat_test(reference: pd.Series, current: pd.Series, categorical: bool, name: str | None,
               threshold: float | None, column: str) -> FeatureDrift:
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Categorical if categorical else ColumnType.Numerical
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty:
        return FeatureDrift(column, "none", float("nan"), threshold or 0.0, drifted=not current.empty or not reference.empty)
    test = get_stattest(reference, current, kind, name)
    result = test(reference, current, kind, threshold)
    return FeatureDrift(column, test.name, float(result.drift_score), float(result.actual_threshold), bool(result.drifted))


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: BatchSchema,
    settings: DriftSettings,
    share_threshold: float,
    reference_predictions: np.ndarray | None = None,
    current_predictions: np.ndarray | None = None,
    reference_target: pd.Series | None = None,
    current_target: pd.Series | None = None,
    growing: tuple[str, ...] = (),
) -> DriftResult:
    """Per-feature drift, the drifted share (of the features that do not grow with time: `growing`),
    drift of the champion's predictions and of the labels."""
    reference_sample = sample(reference, settings.sample_size)
    current_sample = sample(current, settings.sample_size)
    features = [
        _stat_test(
            reference_sample[column], current_sample[column], column in schema.categorical,
            settings.stattests.get(column), settings.thresholds.get(column), column,
        )
        for column in schema.features
    ]
    counted = [f for f in features if f.column not in growing]
    share = sum(f.drifted for f in counted) / len(counted) if counted else 0.0
    result = DriftResult(features=features, share=share, dataset_drift=share > share_threshold,
                         sample_rows=len(current_sample), growing=[c for c in schema.features if c in growing])
    if reference_predictions is not None and current_predictions is not None:
        categorical = schema.task == "classification"
        convert = (lambda a: pd.Series(a).astype(str)) if categorical else (lambda a: pd.Series(a, dtype=float))
        prediction = _stat_test(
            sample(convert(reference_predictions).to_frame("p"), settings.sample_size)["p"],
            sample(convert(current_predictions).to_frame("p"), settings.sample_size)["p"],
            # One fixed distance whatever the sample size, so the number means the same in
            # every record (Evidently's default switches to a p-value below 1,000 rows).
            categorical, PREDICTION_STATTEST[schema.task], None, "prediction",
        )
        result.prediction_drift, result.prediction_drifted = prediction.score, prediction.drifted
    if reference_target is not None and current_target is not None and current_target.notna().any():
        categorical = schema.task == "classification"
        convert = (lambda s: s.astype(str)) if categorical else (lambda s: s.astype(float))
        result.target_drift = _stat_test(
            sample(convert(reference_target.dropna()).to_frame("t"), settings.sample_size)["t"],
            sample(convert(current_target.dropna()).to_frame("t"), settings.sample_size)["t"],
            categorical, settings.stattests.get(schema.target), settings.thresholds.get(schema.target), schema.target,
        )
    return result


def report_wanted(settings: DriftSettings, drift: DriftResult, retraining: bool) -> bool:
    """Render the full report when someone will read it: a feature drifted or a retrain happens."""
    if settings.render_report == "never":
        return False
    return settings.render_report == "always" or retraining or bool(drift.drifted_features)


def render_drift_report(reference: pd.DataFrame, current: pd.DataFrame, schema: BatchSchema,
                        settings: DriftSettings, share_threshold: float, folder: Path, title: str = "",
                        subtitle: str = "") -> list[Path]:
    """Evidently's DataDriftPreset report as HTML and JSON, for a person to read. Columns beyond the features
    that both frames hold, `prediction` and `target` (the model's outputs and the labels), are compared too;
    `title` and `subtitle` head the page (which batch, against which model version's training data)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    outputs = [c for c in (PREDICTION_COLUMN, TARGET_COLUMN) if c in reference.columns and c in current.columns]
    classes = [c for c in outputs if schema.task == "classification"]
    definition = DataDefinition(numerical_columns=[*schema.numeric, *(c for c in outputs if c not in classes)],
                                categorical_columns=[*schema.categorical, *classes])
    columns = [*schema.features, *outputs]
    report = Report([DataDriftPreset(columns=columns, drift_share=share_threshold,
                                     per_column_method=settings.stattests or None,
                                     per_column_threshold=settings.thresholds or None)])
    snapshot = report.run(
        Dataset.from_pandas(sample(current, settings.sample_size)[columns], data_definition=definition),
        Dataset.from_pandas(sample(reference, settings.sample_size)[columns], data_definition=definition),
        name=title or None, metadata={"subtitle": subtitle} if subtitle else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    html, json_path = folder / "drift_report.html", folder / "drift_report.json"
    snapshot.save_html(str(html))
    if title:
        _head(html, title, subtitle)
    snapshot.save_json(str(json_path))
    return [html, json_path]


# The model's outputs and the labels, as the drift report names them beside the features.
PREDICTION_COLUMN = "prediction (model output)"
TARGET_COLUMN = "target (labels)"


def _head(page: Path, title: str, subtitle: str) -> None:
    """Put a heading at the top of Evidently's page: its own says nothing of which batch or model it is about."""
    from html import escape

    text = page.read_text(encoding="utf-8")
    heading = (f'<div style="font-family:sans-serif;padding:12px 16px;border-bottom:1px solid #ccc">'
               f'<h2 style="margin:0 0 4px 0">{escape(title)}</h2><div>{escape(subtitle)}</div></div>')
    at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
    page.write_text(text[:at] + heading + text[at:], encoding="utf-8")


@dataclass(frozen=True)
class PresetDrift:
    """Evidently's `DataDriftPreset` result: the share of drifted columns, and whether it is dataset drift."""

    share: float
    dataset_drift: bool


def preset_dataset_drift(reference: pd.DataFrame, current: pd.DataFrame, schema: BatchSchema,
                         drift_share: float = 0.5) -> PresetDrift:
    """Evidently's `DataDriftPreset` with its defaults on the whole frames: the tutorial recipe's
    trigger ("retrain when the report says dataset drift"), which the policy simulator compares
    against. Dataset drift when at least `drift_share` of the columns drift, as Evidently counts it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(schema.numeric), categorical_columns=list(schema.categorical))
    columns = list(schema.features)
    snapshot = Report([DataDriftPreset(columns=columns, drift_share=drift_share)]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    counts = next(m["value"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
    share = float(counts["share"])
    return PresetDrift(share, share >= drift_share)
