"""Labels that arrive after their batch: matched to the batch rows by id (pure).

Ground truth is often late (a pump's failure is known a day later, a loan's default months
later). A labels file holds the id column and the target; each label finds the accepted batch
its row came in, fills that row's missing target, and the batch's performance is scored with
the predictions the champion made *at the time* — so the record answers "how good was the
model that served this batch", not "how good is today's model on old data".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from retrainer.core.metrics import MetricSpec, all_metrics
from retrainer.core.schema import BatchSchema, target_values
from retrainer.errors import UserError

PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability__"


class LabelsError(UserError):
    """A labels file that cannot be used; the message is the one-line reason."""


@dataclass
class PreparedLabels:
    """The usable labels of a labels file by row id, its unusable rows, and how many a later line replaced."""

    # Target values indexed by row id (as text: ids are matched by their printed form).
    labels: pd.Series
    # Rows of the file that cannot be used, and why (missing id or label).
    unusable: pd.DataFrame
    duplicate_ids: int = 0


def _ids(values: pd.Series) -> pd.Series:
    """Ids as text, so that they match whatever the file type: a CSV gives 17 where a parquet batch
    held "17", and 17.0 when the column has a gap (pandas reads it as floats)."""
    def text(value: object) -> str | None:
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return values.astype(object).map(text).astype("string")


def prepare_labels(frame: pd.DataFrame, schema: BatchSchema) -> PreparedLabels:
    """The labels of a file, by id; raises LabelsError when the file lacks the id or target column."""
    if schema.id_column is None:
        raise LabelsError("the model has no id column (model.id_column): late labels cannot be matched to rows")
    missing = [c for c in (schema.id_column, schema.target) if c not in frame.columns]
    if missing:
        raise LabelsError(f"missing column(s) {', '.join(missing)}: a labels file needs "
                          f"'{schema.id_column}' and '{schema.target}'")
    ids = _ids(frame[schema.id_column])
    values = target_values(frame, schema)
    usable = ids.notna() & (ids != "") & values.notna()
    labels = pd.Series(values[usable].to_numpy(), index=ids[usable].to_numpy(), name=schema.target)
    duplicates = int(labels.index.duplicated(keep="last").sum())
    # A later line corrects an earlier one for the same row.
    labels = labels[~labels.index.duplicated(keep="last")]
    return PreparedLabels(labels, frame[~usable], duplicates)


@dataclass
class BatchJoin:
    """What late labels did to one accepted batch."""

    frame: pd.DataFrame
    newly_labelled: int
    # Rows that already had a label: theirs is kept, the late one is counted, not applied.
    already_labelled: int
    matched_ids: set[str] = field(default_factory=set)


def join_labels(batch: pd.DataFrame, labels: pd.Series, schema: BatchSchema) -> BatchJoin:
    """Fill the batch's missing targets from `labels` (by id); labelled rows keep their label."""
    assert schema.id_column is not None
    ids = _ids(batch[schema.id_column])
    matched = ids.isin(labels.index)
    frame = batch.copy()
    if schema.target not in frame.columns:
        frame[schema.target] = None
    # The target as the model sees it (text classes, float quantities) is what late labels are
    # too: one type in the column, whatever the batch file held (ints with gaps read as floats).
    targets = target_values(frame, schema)
    missing = targets.isna()
    fill = matched & missing
    if fill.any():
        targets.loc[fill] = labels.loc[ids[fill]].to_numpy()
        frame[schema.target] = targets
    return BatchJoin(frame, int(fill.sum()), int((matched & ~missing).sum()), set(ids[matched].dropna()))


def prediction_frame(ids: pd.Series, predictions: pd.Series, probabilities: pd.DataFrame | None,
                     classes: list[object] | None) -> pd.DataFrame:
    """What is kept of a cycle's scoring for late labels: id, prediction, class probabilities."""
    frame = pd.DataFrame({"id": _ids(ids).to_numpy(), PREDICTION: predictions.to_numpy()})
    if probabilities is not None and classes is not None:
        for position, label in enumerate(classes):
            frame[f"{PROBABILITY_PREFIX}{label}"] = probabilities.iloc[:, position].to_numpy()
    return frame


def batch_metrics(batch: pd.DataFrame, predictions: pd.DataFrame, schema: BatchSchema,
                  primary: MetricSpec | None = None) -> tuple[dict[str, float], int]:
    """The served champion's metrics (`primary` among them) on every labelled row of the batch, and how many
    rows that is."""
    assert schema.id_column is not None
    if schema.target not in batch.columns:
        return {}, 0
    targets = target_values(batch, schema)
    labelled = pd.DataFrame({"id": _ids(batch[schema.id_column]).to_numpy(), "target": targets.to_numpy()})
    labelled = labelled[labelled["target"].notna()]
    # One row per id on each side: a repeated id must not multiply rows in the metric.
    labelled = labelled.drop_duplicates("id", keep="first")
    joined = labelled.merge(predictions.drop_duplicates("id", keep="first"), on="id", how="inner")
    if joined.empty:
        return {}, 0
    columns = [c for c in predictions.columns if c.startswith(PROBABILITY_PREFIX)]
    classes: list[object] | None = None
    probabilities = None
    if columns:
        # Classes are text, as the model sees them (schema.target_values).
        classes = [c[len(PROBABILITY_PREFIX):] for c in columns]
        probabilities = joined[columns].to_numpy(dtype=float)
    return (all_metrics(schema.task, joined["target"], joined[PREDICTION], probabilities, classes, primary=primary),
            len(joined))
