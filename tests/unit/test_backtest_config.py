"""A replay's settings: everything inferred, and never the store or suites of a real deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.replay.backtest import BacktestError, backtest_config, prepare_workdir, split_initial


def test_replay_with_a_production_config_keeps_its_own_store_and_suites(tmp_path: Path) -> None:
    """A config naming a production MLflow server and suite folder is replayed on a SQLite store and suites in the work dir."""
    config = tmp_path / "prod.yaml"
    config.write_text(
        "model: {name: pumps, target: failure}\n"
        "promotion: {margin: 0.02}\n"
        "storage: {suites_dir: ./expectations}\n"
        "mlflow: {tracking_uri: 'http://mlflow.prod:5000', artifact_location: 's3://prod/artifacts'}\n"
    )
    workdir = tmp_path / "replay"
    replay = backtest_config("failure", None, "ignored", workdir, config)
    assert replay.tracking_uri == f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    assert replay.artifact_location == (workdir / "mlartifacts").resolve().as_uri()
    assert replay.suite_path == workdir / "expectations" / "pumps.json"
    assert replay.promotion.margin == 0.02  # the policy under test is the config's own


def test_replay_without_config_is_named_after_the_folder_and_infers_the_task(tmp_path: Path) -> None:
    """With no config, the model takes the given name and leaves the task to inference."""
    replay = backtest_config("y", None, "sales", tmp_path / "w", None)
    assert replay.model.name == "sales"
    assert replay.model.task is None
    assert replay.model.target == "y"


def test_a_used_workdir_is_refused(tmp_path: Path) -> None:
    """A work dir that already holds a replay is refused rather than mixed with a new one."""
    (tmp_path / "retrainer.yaml").write_text("model: {target: y}\n")
    with pytest.raises(BacktestError, match="already holds a backtest"):
        prepare_workdir(tmp_path)


def test_a_misspelt_target_lists_the_columns_there_are(tmp_path: Path) -> None:
    """`backtest --target` naming no column says which columns the batches do have."""
    import pandas as pd

    folder = tmp_path / "batches"
    folder.mkdir()
    for name in ("a", "b"):
        pd.DataFrame({"temp": [1.0, 2.0], "failure": [0, 1]}).to_csv(folder / f"{name}.csv", index=False)
    with pytest.raises(BacktestError, match=r"'failures' is not a column of batches/ \(its columns: temp, failure\)$"):
        split_initial(sorted(folder.glob("*.csv")), 1, "failures")
