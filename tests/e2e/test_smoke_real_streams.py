"""Smoke run of benchmarks/real_streams.py: a real-data stream (statsmodels' fair, weekly CSV batches)
is written the same way twice, and retrainer's own batch reader reads every file. No backtest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batches import batch_name, content_hash, list_batch_files, read_batch
from retrainer.replay.comparison import load_ground_truth

from .benchmarks import BENCHMARKS

pytestmark = pytest.mark.e2e


def test_fair_weekly_is_written_deterministically_and_readable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from real_streams import real_streams

    stream = next(s for s in real_streams() if s.name == "fair-weekly")
    first, truth = stream.write(tmp_path / "one")
    second, _ = stream.write(tmp_path / "two")

    files = list_batch_files(first)
    assert [batch_name(p) for p in files] == [f"b{n:02d}" for n in range(1, stream.batches + 1)]
    assert [content_hash(p) for p in files] == [content_hash(p) for p in list_batch_files(second)]

    dates = []
    for path in files:
        frame = read_batch(path)
        assert 300 <= len(frame) <= 400
        assert set(frame["y"].unique()) <= {0, 1}
        assert "affairs" not in frame.columns
        assert frame["date"].nunique() == 1
        dates.append(frame["date"].iloc[0])
    gaps = {(b - a).days for a, b in zip(pd.to_datetime(dates)[:-1], pd.to_datetime(dates)[1:], strict=True)}
    assert gaps == {7}
    assert sum(len(read_batch(p)) for p in files) == 6366

    ground = load_ground_truth(truth)
    assert ground.change_points == ()
    assert ground.stable == (("b02", f"b{stream.batches:02d}"),)
