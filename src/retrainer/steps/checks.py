"""The checks of a batch: validation (GE suite, duplicates, structure), drift against the
champion's training data, out-of-distribution rows, and the evidence they leave (reports, rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrainer.core.profile import growing_columns
from retrainer.core.records import BatchRecord, used_copy_of
from retrainer.core.schema import (
    feature_frame,
    has_labels,
    target_values,
)
from retrainer.monitoring import (
    DriftResult,
    OodResult,
    compute_drift,
    fit_novelty,
    render_drift_report,
    report_wanted,
    score_novelty,
)
from retrainer.monitoring.drift import PREDICTION_COLUMN, TARGET_COLUMN, sample
from retrainer.registry import (
    ModelVersionInfo,
)
from retrainer.steps.runtime import Runtime
from retrainer.steps.scoring import BatchRead, Scoring
from retrainer.validation import ValidationOutcome, validate_batch


# -- validation, drift, decision ----------------------------------------------------------------
def validate(rt: Runtime, batch: BatchRead, past: list[BatchRecord]) -> ValidationOutcome:
    """Unreadable, duplicate, structurally broken, or judged by the suite as it is on disk now."""
    if batch.frame is None:
        return ValidationOutcome(valid=False, failures=[f"unreadable: {batch.error}"], result={"read_error": batch.error})
    earlier = used_copy_of(past, batch.content_hash)
    if earlier is not None:
        reason = f"duplicate: same content as batch '{earlier}'"
        return ValidationOutcome(valid=False, failures=[reason], result={"duplicate_of": earlier})
    return validate_batch(batch.frame, rt.schema, rt.config.suite_path, rt.config.validation,
                          view=batch.typed(rt.schema))


def _reference_inputs(rt: Runtime, champion: ModelVersionInfo) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    if champion.version not in rt.reference_inputs:
        snapshot = rt.registry.load_reference(champion)
        reference = feature_frame(snapshot, rt.schema)
        predictions = np.asarray(rt.registry.load_model(champion).predict(reference))
        # Re-based whenever the champion changes: only the serving champion's reference is kept.
        rt.reference_inputs = {champion.version: (reference, predictions, target_values(snapshot, rt.schema))}
    return rt.reference_inputs[champion.version]


def measure_drift(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, scoring: Scoring) -> DriftResult:
    """Drift against the champion's own training data (train/serve skew), features and predictions."""
    assert batch.frame is not None
    reference, reference_predictions, reference_target = _reference_inputs(rt, champion)
    typed = batch.typed(rt.schema)
    labels = target_values(typed, rt.schema) if has_labels(typed, rt.schema) else None
    # Sampled before the model's input is cut from it: the same rows compute_drift would sample, without
    # a copy of the whole batch.
    current = feature_frame(sample(typed, rt.config.drift.sample_size), rt.schema)
    return compute_drift(
        reference, current, rt.schema, rt.config.drift,
        rt.config.policy.drift_share_threshold, reference_predictions,
        None if scoring.predictions is None else scoring.predictions.to_numpy(),
        reference_target, labels, _growing(rt, champion, reference),
    )


def _growing(rt: Runtime, champion: ModelVersionInfo, reference: pd.DataFrame) -> tuple[str, ...]:
    """The reference's columns that grow with time, profiled once per champion (its reference is fixed)."""
    if champion.version not in rt.growing:
        rt.growing = {champion.version: tuple(growing_columns(reference, rt.schema))}
    return rt.growing[champion.version]


def measure_ood(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead) -> OodResult | None:
    """The share of rows unlike the champion's training data; the most unusual saved for review."""
    settings = rt.config.drift
    if not settings.out_of_distribution or batch.frame is None or batch.frame.empty:
        return None
    if champion.version not in rt.novelty:
        reference, _, _ = _reference_inputs(rt, champion)
        rt.novelty = {champion.version: fit_novelty(reference, rt.schema, settings.ood_reference_quantile,
                                                    rt.config.training.seed)}
    # score_novelty cuts the model's input a chunk at a time (an input frame of the whole batch was the
    # cycle's peak of memory: 0.8 GB at 1M rows × 50 features).
    return score_novelty(rt.novelty[champion.version], batch.typed(rt.schema), rt.schema, settings.ood_top_rows)


# -- the record -------------------------------------------------------------------------------
def save_ood_rows(rt: Runtime, ood: OodResult | None, batch: BatchRead, folder_name: str) -> list[Path]:
    """The batch's most unusual rows as delivered (id and time included), for a person to review."""
    if ood is None or ood.top_rows.empty or batch.frame is None:
        return []
    folder = rt.config.storage.model_dir(rt.config.model.name) / "reports" / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "out_of_distribution_rows.csv"
    rows = batch.frame.loc[ood.top_rows.index]
    rows.insert(0, "novelty_score", ood.top_rows["novelty_score"])
    rows.to_csv(path, index=False)
    return [path]


def render_report(rt: Runtime, champion: ModelVersionInfo, batch: BatchRead, drift: DriftResult | None,
                  retraining: bool, folder_name: str, scoring: Scoring | None = None, name: str = "") -> list[Path]:
    """Evidently's full report, only when someone will read it (see DriftSettings.render_report): the batch's
    features, the champion's predictions and the labels against the champion's training data, headed by
    which batch and which version it is about."""
    if drift is None or batch.frame is None or not report_wanted(rt.config.drift, drift, retraining):
        return []
    reference, reference_predictions, reference_target = _reference_inputs(rt, champion)
    folder = rt.config.storage.model_dir(rt.config.model.name) / "reports" / folder_name
    rows = sample(batch.typed(rt.schema), rt.config.drift.sample_size)
    current = feature_frame(rows, rt.schema)
    reference = reference.assign(**{PREDICTION_COLUMN: reference_predictions, TARGET_COLUMN: reference_target.to_numpy()})
    if scoring is not None and scoring.predictions is not None:
        current[PREDICTION_COLUMN] = scoring.predictions.reindex(rows.index).to_numpy()
    if has_labels(rows, rt.schema):
        current[TARGET_COLUMN] = target_values(rows, rt.schema).to_numpy()
    title = (f"Drift of batch '{name or folder_name}' against the training data of "
             f"'{rt.config.model.name}' version {champion.version}")
    # Evidently's own summary below counts the model's output and the labels as columns too; the decision
    # counted the features only, which this line says.
    subtitle = (f"{len(batch.frame)} rows ({len(current)} compared) against {len(reference)} training rows. "
                f"The decision counted the {len(drift.features)} features: {len(drift.drifted_features)} drifted "
                f"(share {drift.share:.2f}, threshold {rt.config.policy.drift_share_threshold:g})"
                + ("" if drift.prediction_drift is None else f"; prediction drift {drift.prediction_drift:.3f}")
                + ". The model's output and the labels are compared below too.")
    return render_drift_report(reference, current, rt.schema, rt.config.drift,
                               rt.config.policy.drift_share_threshold, folder, title, subtitle)
