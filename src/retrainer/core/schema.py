"""Which columns are what: target, task, features (numeric vs categorical), id and time.

Pure pandas: inferred once from the first champion's training data, then fixed in the
config so every later batch is read the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from retrainer.config import ModelSettings, Task
from retrainer.errors import UserError

ID_NAMES = ("id", "uid", "uuid", "guid", "pk", "key", "row_id")
TIME_NAMES = ("timestamp", "event_time", "time", "date", "datetime", "ts", "created_at")
# An integer target with at most this many distinct values is a class label, not a quantity.
MAX_CLASSES = 20
# A string column whose values are mostly distinct is an identifier or free text, not a category.
MAX_CATEGORY_SHARE = 0.5


class SchemaError(UserError):
    """The data does not fit the configured columns; the message names the column."""


@dataclass(frozen=True)
class BatchSchema:
    """The columns of a model's batches: the target and its task, numeric and categorical features, and
    the optional id and time columns (None: the batches have none)."""

    target: str
    task: Task
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    id_column: str | None = None
    time_column: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """The model's input columns: the numeric features, then the categorical ones."""
        return self.numeric + self.categorical

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns a batch must have to be scored (the label may come later)."""
        return self.features


def _looks_like_time(name: str, column: pd.Series) -> bool:
    if ptypes.is_datetime64_any_dtype(column):
        return True
    if name.lower() in TIME_NAMES and ptypes.is_numeric_dtype(column):
        return _epoch_unit(column) is not None  # a clock, not a feature; a duration stays a feature
    if name.lower() in TIME_NAMES:
        parsed = pd.to_datetime(column.dropna().head(100), errors="coerce", utc=True)
        return len(parsed) > 0 and bool(parsed.notna().all())
    return False


# Epoch timestamps between 2000 and 2100, in seconds or milliseconds.
EPOCH_SECONDS = (946_684_800, 4_102_444_800)


def _epoch_unit(column: pd.Series) -> Literal["s", "ms"] | None:
    values = pd.to_numeric(column, errors="coerce").dropna()
    if values.empty:
        return None
    units: tuple[tuple[Literal["s", "ms"], int], ...] = (("s", 1), ("ms", 1000))
    for unit, scale in units:
        if EPOCH_SECONDS[0] * scale <= values.min() and values.max() <= EPOCH_SECONDS[1] * scale:
            return unit
    return None


def parse_times(column: pd.Series) -> pd.Series:
    """Event times as UTC timestamps (unparseable values dropped): datetimes, ISO strings or epoch numbers."""
    if ptypes.is_numeric_dtype(column) and not ptypes.is_bool_dtype(column):
        unit = _epoch_unit(column)
        if unit is None:
            return pd.Series([], dtype="datetime64[ns, UTC]")
        return pd.to_datetime(column, unit=unit, errors="coerce", utc=True).dropna()
    return pd.to_datetime(column, errors="coerce", utc=True).dropna()


def _looks_like_id(name: str, column: pd.Series) -> bool:
    lowered = name.lower()
    named_like_id = lowered in ID_NAMES or lowered.endswith("_id")
    return named_like_id and column.nunique(dropna=True) == len(column.dropna())


def is_whole(values: pd.Series) -> bool:
    """Whether every value is a whole number (an integer column, or floats with nothing after the point)."""
    return ptypes.is_integer_dtype(values) or bool((values == values.round()).all())


def infer_task(target: pd.Series) -> Task:
    """The task a target calls for: classification for booleans, text, and whole numbers with at most
    `MAX_CLASSES` distinct values; regression otherwise."""
    if ptypes.is_bool_dtype(target) or not ptypes.is_numeric_dtype(target):
        return "classification"
    values = target.dropna()
    whole = is_whole(values)
    if whole and values.nunique() <= MAX_CLASSES:
        return "classification"
    return "regression"


def infer_schema(frame: pd.DataFrame, settings: ModelSettings) -> BatchSchema:
    """Fill in whatever the settings leave out, from a reference frame."""
    if settings.target not in frame.columns:
        raise SchemaError(
            f"target column '{settings.target}' is not in the data (columns: {', '.join(map(str, frame.columns))})"
        )
    target = frame[settings.target]
    task = settings.task or infer_task(target)
    columns = [c for c in frame.columns if c != settings.target]

    time_column = settings.time_column
    if time_column is None:
        time_column = next((c for c in columns if _looks_like_time(str(c), frame[c])), None)
    id_column = settings.id_column
    if id_column is None:
        id_column = next((c for c in columns if c != time_column and _looks_like_id(str(c), frame[c])), None)

    if settings.features is not None:
        missing = [c for c in settings.features if c not in frame.columns]
        if missing:
            raise SchemaError(f"feature column(s) not in the data: {', '.join(missing)}")
        features = list(settings.features)
    else:
        features = []
        for name in columns:
            if name in (time_column, id_column):
                continue
            column = frame[name]
            if column.isna().all():
                continue  # nothing to learn from, and some estimators refuse all-missing columns
            if not ptypes.is_numeric_dtype(column) and not ptypes.is_bool_dtype(column):
                distinct_share = column.nunique(dropna=True) / max(len(column.dropna()), 1)
                if distinct_share > MAX_CATEGORY_SHARE and column.nunique() > MAX_CLASSES:
                    continue  # free text or an identifier: not a usable category
            features.append(name)
    if not features:
        raise SchemaError("no feature columns left after removing the target, id and time columns")

    if settings.categorical is not None:
        categorical = [c for c in features if c in settings.categorical]
    else:
        categorical = [
            c for c in features if not ptypes.is_numeric_dtype(frame[c]) or ptypes.is_bool_dtype(frame[c])
        ]
    numeric = [c for c in features if c not in categorical]
    return BatchSchema(
        target=settings.target,
        task=task,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        id_column=id_column,
        time_column=time_column,
    )


def schema_from_settings(settings: ModelSettings) -> BatchSchema:
    """The schema of an initialised model, whose settings are complete."""
    if settings.task is None or settings.features is None or settings.categorical is None:
        raise SchemaError(f"model '{settings.name}' is not initialised: run `retrainer init` first")
    categorical = tuple(c for c in settings.features if c in settings.categorical)
    numeric = tuple(c for c in settings.features if c not in settings.categorical)
    return BatchSchema(
        target=settings.target,
        task=settings.task,
        numeric=numeric,
        categorical=categorical,
        id_column=settings.id_column,
        time_column=settings.time_column,
    )


def complete_settings(settings: ModelSettings, schema: BatchSchema) -> ModelSettings:
    """Model settings with every inferred field written out, for the saved config."""
    return settings.model_copy(
        update={
            "task": schema.task,
            "features": list(schema.features),
            "categorical": list(schema.categorical),
            "id_column": schema.id_column,
            "time_column": schema.time_column,
        }
    )


def _integral_as_int(column: pd.Series) -> pd.Series:
    """Whole numbers as integers: 3 and 3.0 (a CSV column with a gap reads as float) are one category."""
    if ptypes.is_numeric_dtype(column) and not ptypes.is_bool_dtype(column):
        values = column.dropna()
        if bool((values == values.round()).all()):
            return column.astype("Int64")
    return column


def resolve_model_settings(frame: pd.DataFrame, settings: ModelSettings) -> ModelSettings:
    """Settings with every column setting inferred from `frame` where the config leaves it out."""
    return complete_settings(settings, infer_schema(frame, settings))


def feature_frame(frame: pd.DataFrame, schema: BatchSchema) -> pd.DataFrame:
    """The model's input: features only, numeric as float, categories as strings."""
    features = frame.loc[:, list(schema.features)].copy()
    for name in schema.numeric:
        features[name] = pd.to_numeric(features[name], errors="coerce").astype("float64")
    for name in schema.categorical:
        column = _integral_as_int(features[name])
        features[name] = column.astype(str).where(column.notna(), "<missing>")
    return features


# Rows converted and scored at a time: the model's input (and the transformed matrix inside a
# scikit-learn pipeline, often wider than the batch) then costs one chunk, not a copy of the batch.
SCORING_CHUNK_ROWS = 100_000


def feature_chunks(frame: pd.DataFrame, schema: BatchSchema,
                   rows: int = SCORING_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """``feature_frame`` of consecutive slices of at most `rows` rows (at least one, even if empty)."""
    for start in range(0, max(len(frame), 1), rows):
        yield feature_frame(frame.iloc[start:start + rows], schema)


def typed_view(frame: pd.DataFrame, schema: BatchSchema) -> pd.DataFrame:
    """The batch typed as the champion's schema says, converted once per batch: what the expectations
    judge, what the model's input is cut from (`feature_frame`), what drift compares and what the
    accepted store keeps. Numeric features as numbers (a value that does not parse becomes missing;
    booleans as 0.0/1.0), categories and classes as text, a regression target as numbers.

    A CSV column with one stray word reads as text throughout, and a gap turns 1 into 1.0; comparing
    value sets as text keeps '1', 1 and 1.0 one class, and a suite readable as JSON. A parquet batch
    whose numeric column arrived as text would otherwise be stored as text, and every training window
    holding it would fail to concatenate. Missing values stay missing, so null checks still count
    them. Id and time columns are kept as delivered (late labels are joined on the ids as they arrive).
    """
    # A shallow copy: converted columns replace the view's, the batch itself is not touched, and the
    # columns left as they are are not duplicated in memory.
    typed = frame.copy(deep=False)
    for name in schema.numeric:
        if name in typed.columns:
            column = typed[name]
            if ptypes.is_bool_dtype(column):
                typed[name] = column.astype("float64")
            elif not ptypes.is_numeric_dtype(column):
                typed[name] = pd.to_numeric(column, errors="coerce")
    text_columns = [*schema.categorical, *([schema.target] if schema.task == "classification" else [])]
    for name in text_columns:
        if name in typed.columns:
            typed[name] = _as_text(typed[name])
    if schema.task == "regression" and schema.target in typed.columns:
        typed[schema.target] = pd.to_numeric(typed[schema.target], errors="coerce").astype("float64")
    return typed


def _as_text(column: pd.Series) -> pd.Series:
    """Values as text (whole numbers without '.0', value by value), missing values as None."""
    missing = column.isna()
    kind = ptypes.infer_dtype(column, skipna=True)
    # Value by value only where it changes something: text stays text and integers print alike either
    # way (a million-row category column: 0.02 s instead of 0.4 s).
    if kind in ("string", "empty"):
        labels = column.astype(object, copy=True)
    elif kind == "integer" and ptypes.is_integer_dtype(column):
        labels = column.astype(str).astype(object)
    else:
        labels = column.astype(object).map(_text_of)
    if missing.any():
        labels[missing] = None
    return labels


def labels_as_text(values: Any) -> npt.NDArray[np.object_]:
    """Class labels as the pipeline compares them (text, whole numbers without '.0'), as an object array."""
    return np.asarray(_as_text(pd.Series(np.asarray(values, dtype=object))).to_numpy(), dtype=object)


def _text_of(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def target_values(frame: pd.DataFrame, schema: BatchSchema) -> pd.Series:
    """Labels as the model sees them: strings for classes, floats for quantities."""
    target = frame[schema.target]
    if schema.task == "classification":
        return _as_text(target)
    return pd.to_numeric(target, errors="coerce").astype("float64")


def has_labels(frame: pd.DataFrame, schema: BatchSchema) -> bool:
    """Whether the frame has its target column with at least one value in it."""
    return schema.target in frame.columns and bool(frame[schema.target].notna().any())
