"""Out-of-distribution rows (retrainer.monitoring.novelty): an isolation forest on the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer.core.schema import BatchSchema
from retrainer.monitoring.novelty import fit_novelty, score_novelty

SCHEMA = BatchSchema(target="y", task="classification", numeric=("x1", "x2"), categorical=("color",))
QUANTILE = 0.01


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Two standard normal features (moved by `shift` std), a three-colour category and a label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.normal(shift, 1.0, rows),
            "x2": rng.normal(shift, 1.0, rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "y": rng.integers(0, 2, rows),
        }
    )


REFERENCE = _frame(3000, seed=0)
MODEL = fit_novelty(REFERENCE, SCHEMA, QUANTILE)


def test_a_batch_like_the_training_data_flags_about_the_reference_share() -> None:
    """On data from the training distribution about 1 % of rows are flagged, the baseline the share reads against."""
    result = score_novelty(MODEL, _frame(2000, seed=1), SCHEMA, top=50)
    assert result.share < 0.05
    assert result.share > 0
    assert result.baseline_share == QUANTILE
    assert result.cutoff == MODEL.cutoff


def test_the_training_data_itself_flags_the_reference_quantile() -> None:
    """Scoring the training rows flags the share given as reference_quantile."""
    result = score_novelty(MODEL, REFERENCE, SCHEMA, top=0)
    assert abs(result.share - QUANTILE) < 0.002


def test_a_batch_far_from_the_training_data_is_mostly_flagged() -> None:
    """A batch moved 10 standard deviations away has nearly all its rows out of distribution."""
    result = score_novelty(MODEL, _frame(500, seed=2, shift=10.0), SCHEMA, top=50)
    assert result.share > 0.9


def test_top_rows_are_the_most_unusual_first_with_their_score() -> None:
    """The kept rows number at most `top`, most unusual first, with the batch's columns and a novelty_score."""
    batch = _frame(500, seed=3, shift=10.0)
    result = score_novelty(MODEL, batch, SCHEMA, top=7)
    top_rows = result.top_rows
    assert len(top_rows) == 7
    assert list(top_rows.columns) == ["novelty_score", *batch.columns]
    scores = top_rows["novelty_score"].tolist()
    assert scores == sorted(scores)
    assert all(score < result.cutoff for score in scores)
    # the rows are the batch's own rows, values unchanged
    pd.testing.assert_frame_equal(top_rows.drop(columns="novelty_score"), batch.loc[top_rows.index])


def test_top_rows_keep_only_rows_that_are_out_of_distribution() -> None:
    """With few unusual rows in a batch, only those are kept, even when `top` allows more."""
    batch = _frame(2000, seed=4)
    result = score_novelty(MODEL, batch, SCHEMA, top=500)
    flagged = round(result.share * len(batch))
    assert 0 < flagged < 500
    assert len(result.top_rows) == flagged
    assert (result.top_rows["novelty_score"] < result.cutoff).all()


def test_a_category_never_seen_in_training_is_scored_not_an_error() -> None:
    """A colour the training data never had is scored like any other value instead of crashing."""
    batch = _frame(200, seed=5)
    batch.loc[:9, "color"] = "purple"
    result = score_novelty(MODEL, batch, SCHEMA, top=20)
    assert 0.0 <= result.share <= 1.0
    assert len(result.top_rows) <= 20


def test_the_same_seed_fits_the_same_forest() -> None:
    """Two processes fitting on the same training data get the same cutoff and the same scores."""
    again = fit_novelty(REFERENCE, SCHEMA, QUANTILE)
    assert again.cutoff == MODEL.cutoff
    batch = _frame(300, seed=6, shift=1.5)
    assert score_novelty(again, batch, SCHEMA, top=300).share == score_novelty(MODEL, batch, SCHEMA, top=300).share


def test_a_higher_reference_quantile_flags_more_rows() -> None:
    """Choosing a higher reference_quantile raises the cutoff, so more rows of the same batch are flagged."""
    loose = fit_novelty(REFERENCE, SCHEMA, 0.1)
    batch = _frame(2000, seed=7)
    assert loose.cutoff > MODEL.cutoff
    share = score_novelty(loose, batch, SCHEMA, top=0).share
    assert 0.05 < share < 0.15
    assert share > score_novelty(MODEL, batch, SCHEMA, top=0).share
