"""Types and records, on a real MLflow store, real Prefect cycles and real Great Expectations suites: a
parquet batch whose numeric column arrived as text is stored as the champion learned it (and a later
training window holding it trains), `retrainer init` keeps a hand-edited suite, a batch without its id or
time column is accepted with a notice, and every version says what it takes to train it again."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pandas.api import types as ptypes

from retrainer.config import load_config
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch

from .conftest import initialise_model

pytestmark = pytest.mark.integration

RETYPED = "vibration_mm_s"  # a numeric feature of the scenario
ROWS = 1500


def _client(root: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _accepted(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((root / "models" / "pumps" / "accepted").glob("*.parquet"))}


def _retyped(day: int, rng: np.random.Generator) -> pd.DataFrame:
    """A stable day whose `RETYPED` column was exported as text (every value still a number)."""
    frame = make_batch(ScriptedBatch(f"day-{day}", "stable", "none"), day, ROWS, rng)
    frame[RETYPED] = frame[RETYPED].astype(str)
    return frame


@pytest.fixture(scope="module")
def retrained(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Champion v1 on a CSV day; then a parquet day with `RETYPED` as text (accepted), a parquet day with
    one word in that column (rejected), and a day far enough on for the champion (max age 2 days) to be
    stale, whose retrain's window holds the text-typed day with the last one."""
    from retrainer.pipeline.flows import monitor_batch

    root = tmp_path_factory.mktemp("types")
    rng = np.random.default_rng(23)
    make_batch(ScriptedBatch("init", "stable", "init"), 0, ROWS, rng).to_csv(root / "init.csv", index=False)
    retyped = _retyped(1, rng)
    retyped.to_parquet(root / "retyped.parquet", index=False)
    broken = _retyped(2, rng)
    broken.loc[7, RETYPED] = "n/a-text"
    broken.to_parquet(root / "broken.parquet", index=False)
    make_batch(ScriptedBatch("later", "stable", "retrain"), 4, ROWS, rng).to_csv(root / "later.csv", index=False)
    assert not ptypes.is_numeric_dtype(pd.read_parquet(root / "retyped.parquet")[RETYPED]), "delivered as text"

    config = Path(initialise_model(root, {"policy": {"cooldown_batches": 0, "retrain_every_days": 2}},
                                   root / "init.csv"))
    records = {name: monitor_batch(str(config), str(root / name)) for name in
               ("retyped.parquet", "broken.parquet", "later.csv")}
    return {"root": root, "config": config, "delivered": retyped, "records": records}


def test_a_numeric_column_delivered_as_text_is_stored_as_numbers_and_a_later_window_trains_on_it(
    retrained: dict[str, Any]
) -> None:
    """A parquet day whose numeric column came as text is accepted and stored as numbers, so the retrain
    whose window holds it with a later day registers a challenger instead of failing."""
    root, records = retrained["root"], retrained["records"]
    first = records["retyped.parquet"]
    assert first["valid"] is True, first["reasons"]
    assert first["decision"] == "none", first["reasons"]

    stored = pd.read_parquet(_accepted(root)["000001__retyped"])
    assert ptypes.is_numeric_dtype(stored[RETYPED])
    assert not ptypes.is_bool_dtype(stored[RETYPED])
    assert np.allclose(stored[RETYPED].to_numpy(), retrained["delivered"][RETYPED].astype(float).to_numpy())

    later = records["later.csv"]
    assert later["decision"] == "retrain", later["reasons"]
    assert later["retrain_error"] is None
    assert later["challenger_version"] == "2"
    version = _client(root).get_model_version("pumps", "2")
    assert version.tags["retrainer.window_batches"] == "1,3", "the window holds the text-typed day"


def test_a_text_column_holding_a_word_is_rejected_with_a_reason_naming_the_column(retrained: dict[str, Any]) -> None:
    """One cell that is not a number in the retyped column rejects the day, in one line naming the column."""
    root, record = retrained["root"], retrained["records"]["broken.parquet"]
    assert record["decision"] == "reject_batch"
    assert record["valid"] is False
    [reason] = [f for f in record["validation_failures"] if RETYPED in f]
    assert "not numbers" in reason
    assert "n/a-text" in reason
    assert "\n" not in reason
    assert "000002__broken" not in _accepted(root)
    assert record["quarantined_as"]
    assert Path(record["quarantined_as"]).exists()


def _rows_sha256(frame: pd.DataFrame, features: list[str]) -> str:
    """SHA-256 of pandas' row hashes of the labelled feature and target columns."""
    rows = frame[frame[TARGET].notna()].loc[:, [*features, TARGET]]
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()


def test_every_version_says_what_it_takes_to_train_it_again(retrained: dict[str, Any]) -> None:
    """`retrainer status` lists each version's seed, code and training-rows hash, and the challenger's MLflow
    run holds the training settings; v1's hash is that of the rows it was trained on."""
    from retrainer.state.stores import with_saved_columns
    from retrainer.steps.operator import RegistryCommands

    root, config = retrained["root"], retrained["config"]
    versions = {v["version"]: v for v in RegistryCommands.open(load_config(config)).status()["versions"]}
    assert set(versions) == {"1", "2"}
    for summary in versions.values():
        assert summary["seed"] == "0"
        assert re.fullmatch(r"[0-9a-f]{64}", summary["training_rows_sha256"])
        assert summary["retrainer_version"]
        assert summary["retrainer_version"] != "unknown"
        assert re.fullmatch(r"[0-9a-f]{40}|unknown", summary["git_commit"])
        assert int(summary["training_rows"]) > 0

    features = list(with_saved_columns(load_config(config)).model.features or [])
    assert versions["1"]["training_rows"] == str(ROWS)
    # The rows init trained on, typed as the accepted store keeps them (as a retrain's window is hashed).
    stored = pd.read_parquet(root / "models" / "pumps" / "accepted" / "000000__init.parquet")
    assert versions["1"]["training_rows_sha256"] == _rows_sha256(stored, features)
    assert int(versions["2"]["training_rows"]) > ROWS  # the text-typed day and most of the last one
    assert versions["2"]["training_rows_sha256"] != versions["1"]["training_rows_sha256"]
    assert versions["2"]["window_batches"] == "1,3"

    client = _client(root)
    params = client.get_run(client.get_model_version("pumps", "2").run_id).data.params
    assert params["training.seed"] == "0"
    assert params["seed"] == "0"
    assert params["training.holdout_fraction"] == "0.3"
    assert params["training.window_batches"] == "3"
    assert params["training_rows_sha256"] == versions["2"]["training_rows_sha256"]
    assert params["training_rows"] == versions["2"]["training_rows"]


# -- retrainer init and the suite, dropped id and time columns ----------------------------------------------
HAND_SUITE = {
    "name": "pumps",
    "expectations": [
        *({"type": "expect_column_to_exist", "kwargs": {"column": column}, "meta": {}, "severity": "critical"}
          for column in ("temperature_c", "vibration_mm_s", "pressure_bar", "machine_type")),
        {"type": "expect_column_values_to_be_between", "severity": "critical", "meta": {"edited_by": "dana"},
         "kwargs": {"column": "temperature_c", "min_value": -40, "max_value": 150, "mostly": 0.99}},
    ],
    "meta": {"notes": "edited by hand: the plant's own limits"},
}


def _model_dir(root: Path, rng: np.random.Generator, suite: bool) -> tuple[Path, Path]:
    """A config for `pumps` in `root` (no cool-down, no staleness) and its first day; with `suite`, a
    hand-edited suite where the config says the suite lives. Returns (config, first batch)."""
    root.mkdir()
    config = root / "retrainer.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET},
                                      "policy": {"cooldown_batches": 0, "max_champion_age_days": None}}),
                      encoding="utf-8")
    first = root / "first.csv"
    make_batch(ScriptedBatch("first", "stable", "init"), 0, ROWS, rng).to_csv(first, index=False)
    if suite:
        path = load_config(config).suite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(HAND_SUITE, indent=4) + "\n", encoding="utf-8")
    return config, first


def _init(capsys: pytest.CaptureFixture[str], config: Path, first: Path, *extra: str) -> dict[str, Any]:
    """`retrainer init` in process: its exit status must be 0; returns the JSON it printed."""
    from retrainer.cli import main

    capsys.readouterr()
    assert main(["init", "--config", str(config), "--data", str(first), *extra]) == 0
    out = capsys.readouterr().out
    return dict(json.loads(out[out.index('{\n  "champion_version"'):]))


def test_init_keeps_a_hand_edited_suite_drafts_a_missing_one_and_redrafts_on_force(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`retrainer init` leaves a suite someone edited byte for byte (and says it drafted none), drafts one
    where there is none, and replaces an edited one only with --force."""
    # What `init` sets for its local Prefect API (already set for this session, or not needed with
    # the test API): put back after the test.
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    rng = np.random.default_rng(5)

    kept_config, kept_first = _model_dir(tmp_path / "kept", rng, suite=True)
    suite = load_config(kept_config).suite_path
    edited = suite.read_bytes()
    printed = _init(capsys, kept_config, kept_first)
    assert printed["champion_version"] == "1"
    assert printed["suite"] == str(suite)
    assert printed["suite_drafted"] is False
    assert suite.read_bytes() == edited

    drafted_config, drafted_first = _model_dir(tmp_path / "drafted", rng, suite=False)
    drafted_suite = load_config(drafted_config).suite_path
    assert not drafted_suite.exists()
    printed = _init(capsys, drafted_config, drafted_first)
    assert printed["suite_drafted"] is True
    drafted = json.loads(drafted_suite.read_text(encoding="utf-8"))
    assert {e["kwargs"].get("column") for e in drafted["expectations"]} >= {"temperature_c", "flow_m3h", "site"}

    forced_config, forced_first = _model_dir(tmp_path / "forced", rng, suite=True)
    forced_suite = load_config(forced_config).suite_path
    printed = _init(capsys, forced_config, forced_first, "--force")
    assert printed["suite_drafted"] is True
    assert forced_suite.read_bytes() != edited
    assert "edited by hand" not in forced_suite.read_text(encoding="utf-8")


def test_a_day_without_its_time_or_id_column_is_accepted_with_a_notice(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `retrainer init` took `event_time` as the time column and `reading_id` as the id column, a day
    without either is accepted, with a warning that says what the cycle can no longer do."""
    from retrainer.pipeline.flows import monitor_batch

    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    rng = np.random.default_rng(8)
    config, first = _model_dir(tmp_path / "model", rng, suite=False)
    columns = _init(capsys, config, first)["columns"]
    assert columns["time_column"] == "event_time"
    assert columns["id_column"] == "reading_id"

    make_batch(ScriptedBatch("no-time", "stable", "none"), 1, ROWS, rng).drop(columns=["event_time"]).to_csv(
        tmp_path / "no-time.csv", index=False)
    make_batch(ScriptedBatch("no-id", "stable", "none"), 2, ROWS, rng).drop(columns=["reading_id"]).to_csv(
        tmp_path / "no-id.csv", index=False)

    no_time = monitor_batch(str(config), str(tmp_path / "no-time.csv"))
    assert no_time["valid"] is True, no_time["validation_failures"]
    assert no_time["decision"] == "none", no_time["validation_failures"]
    [notice] = [w for w in no_time["validation_warnings"] if "time column" in w]
    assert "'event_time'" in notice
    assert "wall clock" in notice
    # The champion (trained on 1 March 2026) is aged on the wall clock, as the notice says.
    trained_until = datetime(2026, 3, 2, tzinfo=UTC)
    assert abs(no_time["champion_age_days"] - (datetime.now(UTC) - trained_until).total_seconds() / 86400) < 1

    no_id = monitor_batch(str(config), str(tmp_path / "no-id.csv"))
    assert no_id["valid"] is True, no_id["validation_failures"]
    assert no_id["decision"] == "none", no_id["validation_failures"]
    [notice] = [w for w in no_id["validation_warnings"] if "id column" in w]
    assert "'reading_id'" in notice
    assert "labels that arrive later cannot be joined" in notice
    assert not any("time column" in w for w in no_id["validation_warnings"])

    model = tmp_path / "model" / "models" / "pumps"
    assert [p.stem for p in sorted((model / "accepted").glob("*.parquet"))] == [
        "000000__first", "000001__no-time", "000002__no-id"]
    assert [p.stem for p in sorted((model / "predictions").glob("*.parquet"))] == ["000001__no-time"], \
        "no predictions kept for the day without ids"

    # A second `init` on this model is refused before it writes anything: the saved columns stay.
    from retrainer.cli import main

    settings = model / "model_settings.json"
    saved = settings.read_bytes()
    assert main(["init", "--config", str(config), "--data", str(tmp_path / "no-time.csv")]) == 2
    assert "already has @champion" in capsys.readouterr().err
    assert settings.read_bytes() == saved
