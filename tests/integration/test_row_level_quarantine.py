"""Row-level quarantine: a few bad rows are split off and the rest is used; many bad rows reject the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch, write_scenario

pytestmark = pytest.mark.integration


def _bad_labels(path: Path, share: float, seed: int) -> Path:
    frame = make_batch(ScriptedBatch(path.stem, "stable", "x"), 1, 1000, np.random.default_rng(seed))
    bad = frame.sample(frac=share, random_state=seed).index
    frame[TARGET] = frame[TARGET].astype(object)
    frame.loc[bad, TARGET] = "maybe"
    frame.to_csv(path, index=False)
    return path


def test_few_bad_rows_are_split_off_and_many_reject_the_batch(prefect_api: str, tmp_path: Path) -> None:
    """With row-level quarantine on, 2 % bad labels go to quarantine and the other 98 % are accepted; 20 % reject the whole batch."""
    batches = tmp_path / "batches"
    write_scenario(batches, rows=1000, seed=31, script=(ScriptedBatch("r1", "stable", "init"),))
    _bad_labels(batches / "r2.csv", 0.02, 1)
    _bad_labels(batches / "r3.csv", 0.20, 2)
    config = tmp_path / "retrainer.yaml"
    config.write_text(f"model: {{name: pumps, target: {TARGET}}}\nvalidation: {{row_level_quarantine: true}}\n")
    result = run_backtest(batches, TARGET, config_path=config, workdir=tmp_path / "work")
    few, many = result.records[1], result.records[2]

    assert few.valid
    assert few.decision != "reject_batch"
    assert few.rows == 1000
    assert few.validation_warnings[0].startswith("row-level quarantine: 20 row(s) (2.0%) split off, failing: "
                                                 "expect_column_values_to_be_in_set(failure)")
    quarantine = tmp_path / "work" / "models" / "pumps" / "quarantine"
    rejected = pd.read_parquet(quarantine / "r2.rejected_rows.parquet")
    assert len(rejected) == 20
    assert set(rejected[TARGET]) == {"maybe"}
    accepted = pd.read_parquet(next((tmp_path / "work" / "models" / "pumps" / "accepted").glob("*__r2.parquet")))
    assert len(accepted) == 980
    assert "maybe" not in set(accepted[TARGET].astype(str))

    assert many.decision == "reject_batch"
    assert many.validation_failures[-1] == (
        "row-level quarantine: 20.0% of rows fail critical row checks > 5.0%: the whole batch is rejected")
