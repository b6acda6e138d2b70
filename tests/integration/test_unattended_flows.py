"""Flows of the unattended deployments, in process on a temporary Prefect API and a SQLite MLflow store:
the promotion transaction's rollback hook, the staleness check, and the landing intake's refusals."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrainer.config import load_config
from retrainer.replay.scenario import ScriptedBatch, make_batch
from retrainer.state.journal import read_journal

from .conftest import initialise_model

pytestmark = pytest.mark.integration


def _initialised(root: Path, settings: dict[str, Any]) -> Path:
    """Champion v1 trained on a stable day; `stable.csv` and `concept.csv` (accuracy collapses) wait."""
    rng = np.random.default_rng(41)
    make_batch(ScriptedBatch("init", "stable", "init"), 0, 1500, rng).to_csv(root / "init.csv", index=False)
    make_batch(ScriptedBatch("stable", "stable", "none"), 1, 1500, rng).to_csv(root / "stable.csv", index=False)
    make_batch(ScriptedBatch("concept", "concept", "retrain", concept=1), 2, 1500, rng).to_csv(
        root / "concept.csv", index=False)
    return Path(initialise_model(root, settings, root / "init.csv"))


def _client(root: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _alias(root: Path, alias: str) -> str | None:
    try:
        return str(_client(root).get_model_version_by_alias("pumps", alias).version)
    except Exception:
        return None


def test_a_promotion_whose_new_champion_does_not_serve_is_rolled_back(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate passes and @champion moves, but the new champion cannot be loaded from the store as a
    server would load it: the transaction's rollback hook puts every alias back where it was."""
    from retrainer.pipeline.flows import monitor_batch
    from retrainer.registry import ModelRegistry
    from retrainer.steps.operator import RegistryCommands

    config = _initialised(tmp_path, {})
    load = ModelRegistry.load_model

    def store_gone_after_promotion(self: ModelRegistry, info: Any, fresh: bool = False) -> Any:
        if fresh:  # only the check after the promotion loads afresh
            raise OSError("artifact store unreachable")
        return load(self, info, fresh)

    monkeypatch.setattr(ModelRegistry, "load_model", store_gone_after_promotion)
    record = monitor_batch(str(config), str(tmp_path / "concept.csv"))

    assert record["decision"] == "retrain"
    assert record["challenger_version"] == "2"
    assert record["promoted"] is False
    assert "does not serve" in record["promotion_rolled_back"]
    assert _alias(tmp_path, "champion") == "1"
    assert _alias(tmp_path, "previous-champion") is None
    assert _alias(tmp_path, "challenger") == "2"
    assert _client(tmp_path).get_model_version("pumps", "2").tags["retrainer.gate"] == "failed-after-promotion"
    moves = RegistryCommands.open(load_config(config)).status()["history"]
    undo = [m for m in moves if m["actor"] == "retrainer (transaction rollback)"]
    assert {(m["alias"], m["from_version"], m["to_version"]) for m in undo} >= {("champion", "2", "1")}


def test_the_staleness_check_retrains_a_champion_too_old_on_the_wall_clock(prefect_api: str, tmp_path: Path) -> None:
    """The landing went quiet; the daily check finds the champion (trained on March data) too old and,
    with new labels accepted since, retrains on the latest window."""
    from retrainer.pipeline.flows import monitor_batch, staleness_check

    config = _initialised(tmp_path, {"policy": {"cooldown_batches": 0, "max_champion_age_days": 30,
                                                "min_new_labelled_rows": 100},
                                     "serve": {"retrain_trigger": "inline"}})
    assert monitor_batch(str(config), str(tmp_path / "stable.csv"))["decision"] != "reject_batch"
    result = staleness_check(str(config))
    assert result["retrain"] is True
    assert result["reason"].startswith("champion age")
    assert result["reason"].endswith("> 30 d (staleness check)")
    assert result["challenger_version"] == "2"
    assert "retrain_error" not in result
    # The run's own page in the Prefect UI says what it did.
    page = _latest_artifact("pumps-staleness")
    assert page.startswith("## `pumps`: champion v1: age ")
    assert "challenger v2" in page


def test_an_old_champion_without_new_labels_is_left_alone_by_the_staleness_check(prefect_api: str,
                                                                                tmp_path: Path) -> None:
    """Past the age limit, but nothing new to learn from: retraining would only repeat the champion."""
    from retrainer.pipeline.flows import staleness_check

    config = _initialised(tmp_path, {"policy": {"max_champion_age_days": 30},
                                     "serve": {"retrain_trigger": "inline"}})
    result = staleness_check(str(config))
    assert result["retrain"] is False
    assert "(limit 30 d), 0 labelled row(s)" in result["summary"]
    assert _alias(tmp_path, "challenger") is None


def test_landing_intake_refuses_unsafe_names_and_takes_the_rest_once(prefect_api: str, tmp_path: Path) -> None:
    """A file whose name hides characters and a link out of the landing folder are refused on record
    (once), the others are processed in name order; a second scan finds nothing new."""
    from retrainer.pipeline.flows import monitor_landing

    config = _initialised(tmp_path, {"intake": {"landing": "landing", "settle_seconds": 0},
                                     "serve": {"retrain_trigger": "inline"}})
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a-stable.csv").write_bytes((tmp_path / "stable.csv").read_bytes())
    (landing / "b\u202ecsv.exe.csv").write_bytes((tmp_path / "stable.csv").read_bytes())
    (landing / "notes.txt").write_text("not a batch", encoding="utf-8")
    # A link to a file outside the landing folder (a batch that would be rejected): refused, never read.
    decoy = tmp_path / "outside" / "precious.csv"
    decoy.parent.mkdir()
    decoy.write_text("not,a,batch\n", encoding="utf-8")
    (landing / "c-link.csv").symlink_to(decoy)

    first = monitor_landing(str(config))
    outcomes = {b["batch"]: b["outcome"] for b in first["batches"]}
    assert outcomes == {"a-stable": "none", "b\u202ecsv.exe.csv": "refused", "c-link.csv": "refused"}
    assert [r.batch for r in read_journal(tmp_path / "models" / "pumps" / "timeline.jsonl")] == ["init", "a-stable"]
    assert decoy.read_text(encoding="utf-8") == "not,a,batch\n"
    assert (landing / "c-link.csv").is_symlink()
    page = _latest_artifact("pumps-landing")
    assert page.startswith("## `pumps`: 3 batch(es) taken in")
    assert "| `a-stable` | 1 | **none** |" in page
    assert "| `c-link.csv` | - | **refused** |" in page

    second = monitor_landing(str(config))
    assert second["batches"] == []
    assert sorted(second["ignored"]) == ["a-stable.csv", "b\u202ecsv.exe.csv",
                                                                     "c-link.csv"]


def test_a_batch_whose_cycle_keeps_dying_is_set_aside_with_an_alert(
    prefect_api: str, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """Three unfinished attempts (a file that crashes its worker each time): the batch is set aside as
    failed, the webhook hears of it, and the batches behind it go on."""
    from retrainer.data.landing import list_landed, stage
    from retrainer.pipeline.flows import monitor_landing
    from retrainer.state.ledger import Ledger

    url, received = receiver
    config = _initialised(tmp_path, {"intake": {"landing": "landing", "max_attempts": 3, "settle_seconds": 0},
                                     "serve": {"retrain_trigger": "inline"},
                                     "notifications": {"webhook_url": url}})
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a-poison.csv").write_bytes((tmp_path / "stable.csv").read_bytes())
    [poison] = list_landed(str(landing))
    staged = tmp_path / "models" / "pumps" / "incoming" / "poison-copy.csv"
    ledger = Ledger(load_config(config).ledger_url)
    entry = ledger.claim("pumps", poison, "a-poison", stage(poison, staged), 1, str(staged))
    ledger.retry(ledger.retry(entry))  # the workers that ran it died twice more
    (landing / "b-next.csv").write_bytes((tmp_path / "concept.csv").read_bytes())

    result = monitor_landing(str(config))

    assert [(b["batch"], b["outcome"]) for b in result["batches"]] == [("a-poison", "failed"), ("b-next", "retrain")]
    assert {e.name: e.status for e in ledger.entries("pumps")} == {"a-poison": "failed", "b-next": "done"}
    assert staged.exists(), "the set-aside copy is kept for a person to look at"
    alerts = [body for body in received if body["events"] == ["intake_failed"]]
    assert len(alerts) == 1
    assert alerts[0]["intake_failed"]["batch"] == "a-poison"
    assert [r.batch for r in read_journal(tmp_path / "models" / "pumps" / "timeline.jsonl")] == ["init", "b-next"]

    # Someone fixed what broke the workers and drops the file again: it gets another round.
    later = time.time() - 1  # a new stamp, in the past: settled
    os.utime(landing / "a-poison.csv", (later, later))
    third = monitor_landing(str(config))
    assert [(b["batch"], b["batch_index"], b["resumed"]) for b in third["batches"]] == [("a-poison", 1, True)]
    assert {e.name: e.status for e in ledger.entries("pumps")} == {"a-poison": "done", "b-next": "done"}
    records = read_journal(tmp_path / "models" / "pumps" / "timeline.jsonl")
    assert sorted((r.batch, r.batch_index) for r in records) == [("a-poison", 1), ("b-next", 2), ("init", 0)]


def _latest_artifact(key: str) -> str:
    """The markdown of the newest Prefect artifact under `key` (what the UI shows on the flow run's page)."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no artifact {key!r}"
    return str(found[0].data)
