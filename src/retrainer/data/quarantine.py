"""The quarantine: rejected batches and rows, each beside the evidence of why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd


def _free_stem(folder: Path, name: str) -> str:
    """`name`, or `name.2`, `name.3`… when a batch of that name is already in quarantine:
    a second rejection under the same name must not overwrite the first."""
    stem, number = name, 1
    while (folder / f"{stem}.validation.json").exists():
        number += 1
        stem = f"{name}.{number}"
    return stem


def _write_evidence(folder: Path, stem: str, result: dict[str, Any], summary: str) -> None:
    (folder / f"{stem}.validation.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (folder / f"{stem}.summary.txt").write_text(summary + "\n", encoding="utf-8")


def quarantine_batch(source: Path, name: str, folder: Path, result: dict[str, Any], summary: str) -> Path:
    """Copy a rejected batch, untouched, beside its validation result and a short summary."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, name)
    target = folder / f"{stem}{source.suffix}"
    if source.is_file() and source.resolve() != target.resolve():
        shutil.copy2(source, target)
    _write_evidence(folder, stem, result, summary)
    return target


def quarantine_rows(rows: pd.DataFrame, name: str, folder: Path, result: dict[str, Any], summary: str) -> Path:
    """Rows split off an accepted batch, kept with the validation result that split them."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, name)
    target = folder / f"{stem}.rejected_rows.parquet"
    rows.to_parquet(target)
    _write_evidence(folder, stem, result, summary)
    return target


def remove_landed(source: Path, quarantined: Path) -> None:
    """Take a rejected batch out of its landing place, once its quarantine copy is in place. Only a
    regular file is removed: never through a symbolic link, whose target is not the pipeline's."""
    if source.is_symlink():
        return
    if quarantined.is_file() and source.is_file() and source.resolve() != quarantined.resolve():
        source.unlink()
