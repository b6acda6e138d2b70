"""Out-of-distribution rows: how much of a batch lies where the champion was never trained.

An isolation forest is fitted on the champion's training snapshot (the same reference drift
uses), with a fixed seed so that every process fits the same forest. A row is out of
distribution when its normality score is below the score that only ``reference_quantile``
of the training rows fall under — so on data like the training data about that share is
flagged, and the flagged share of a batch reads against that baseline. Per-feature drift
tests see marginal distributions; this sees rows whose *combination* of values is new.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from retrainer.core.schema import BatchSchema, feature_chunks

# Enough rows to describe the training distribution; more only costs fitting time.
FIT_ROWS = 10_000


@dataclass
class NoveltyModel:
    """An isolation forest fitted on a champion's training data, with the score below which a row
    is out of distribution and the share of training rows that falls below it (`reference_quantile`)."""

    pipeline: Pipeline
    cutoff: float
    reference_quantile: float


@dataclass
class OodResult:
    """The out-of-distribution rows of a batch: their share, the score cutoff, and the share expected on
    data like the training data (`baseline_share`, the forest's `reference_quantile`)."""

    share: float
    cutoff: float
    baseline_share: float
    # The most unusual rows of the batch, most unusual first, with their score.
    top_rows: pd.DataFrame


def fit_novelty(reference: pd.DataFrame, schema: BatchSchema, reference_quantile: float, seed: int = 0) -> NoveltyModel:
    """An isolation forest on the reference's features and the score cutoff for 'out of distribution'."""
    inputs = reference[list(schema.features)]
    if len(inputs) > FIT_ROWS:
        inputs = inputs.sample(n=FIT_ROWS, random_state=seed)
    prepare = ColumnTransformer(
        [
            ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                           encoded_missing_value=-2), list(schema.categorical)),
            ("numeric", SimpleImputer(strategy="median"), list(schema.numeric)),
        ]
    )
    pipeline = make_pipeline(prepare, IsolationForest(n_estimators=100, random_state=seed, n_jobs=1))
    pipeline.fit(inputs)
    scores = pipeline.score_samples(inputs)
    return NoveltyModel(pipeline, float(np.quantile(scores, reference_quantile)), reference_quantile)


def score_novelty(model: NoveltyModel, batch: pd.DataFrame, schema: BatchSchema, top: int) -> OodResult:
    """The share of the batch's rows below the cutoff, and the `top` most unusual of them."""
    if batch.empty:
        return OodResult(0.0, model.cutoff, model.reference_quantile, batch.iloc[0:0].assign(novelty_score=[]))
    # Converted and scored a chunk at a time (the batch may be given as delivered).
    scores = np.concatenate([model.pipeline.score_samples(chunk) for chunk in feature_chunks(batch, schema)])
    outside = scores < model.cutoff
    order = np.argsort(scores)[: min(top, int(outside.sum()))]
    top_rows = batch.iloc[order].copy()
    top_rows.insert(0, "novelty_score", scores[order])
    return OodResult(float(outside.mean()), model.cutoff, model.reference_quantile, top_rows)
