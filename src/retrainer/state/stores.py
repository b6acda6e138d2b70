"""The work dir's stores: accepted batches (training windows come from them), the champion's
saved predictions, and the columns `init` inferred."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import ModelSettings, RetrainerConfig


class BatchFiles:
    """One parquet file per batch, ``{index:06d}__{name}.parquet``, so that file-name order is batch order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, index: int, name: str, frame: pd.DataFrame) -> Path:
        """Write one batch's frame as its parquet file, under its index and name; returns the file's path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{index:06d}__{name}.parquet"
        frame.to_parquet(path, index=False)
        return path

    def paths(self) -> dict[int, Path]:
        """Each stored batch's file, by batch index, in index order."""
        return {int(p.name.split("__", 1)[0]): p for p in sorted(self.folder.glob("*.parquet"))}

    def indices(self) -> list[int]:
        """The indices of the stored batches, in order."""
        return sorted(self.paths())

    @staticmethod
    def name_of(path: Path) -> str:
        """A stored batch's name, as delivered (its file is ``{index:06d}__{name}.parquet``)."""
        return path.stem.split("__", 1)[1]


class AcceptedStore(BatchFiles):
    """Accepted batches (features and labels): training windows come from here."""

    def load(self, first_index: int, last_index: int) -> pd.DataFrame:
        """Accepted batches with index in [first_index, last_index], concatenated in order."""
        frames = list(self.each(first_index, last_index).values())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def read(self, index: int) -> pd.DataFrame:
        """The accepted batch with index `index`."""
        return pd.read_parquet(self.paths()[index])

    def each(self, first_index: int, last_index: int) -> dict[int, pd.DataFrame]:
        """Accepted batches with index in [first_index, last_index], one frame each, by index, in order."""
        return {index: pd.read_parquet(path) for index, path in self.paths().items()
                if first_index <= index <= last_index}


class PredictionStore(BatchFiles):
    """The champion's predictions on each accepted batch, by row id: what late labels are scored against
    (columns: ``id``, ``prediction``, and for classifiers ``probability__<class>``)."""


def replace_file_atomically(path: Path, write: Any) -> None:
    """Write a file beside `path` and move it over it: a reader sees the old or the new, never half."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    temporary.replace(path)


MODEL_SETTINGS_FILE = "model_settings.json"


def save_model_settings(config: RetrainerConfig, model: ModelSettings) -> Path:
    """What `retrainer init` inferred about the columns, for configs that leave them out."""
    path = config.storage.model_dir(model.name) / MODEL_SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model.model_dump_json(indent=2), encoding="utf-8")
    return path


def with_saved_columns(config: RetrainerConfig) -> RetrainerConfig:
    """Fill inferred column settings from what `retrainer init` saved, when the file leaves them out."""
    model = config.model
    saved = config.storage.model_dir(model.name) / MODEL_SETTINGS_FILE
    if not saved.exists():
        return config
    inferred = ModelSettings.model_validate_json(saved.read_text(encoding="utf-8"))
    # Only what the file leaves out is taken from init's inference; the file still rules.
    missing = {k: getattr(inferred, k) for k in ("task", "features", "categorical", "id_column", "time_column")
               if getattr(model, k) is None}
    return config.model_copy(update={"model": model.model_copy(update=missing)})
