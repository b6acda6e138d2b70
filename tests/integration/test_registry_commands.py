"""status / promote / rollback on a real MLflow registry (SQLite), after real Prefect cycles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.config import load_config
from retrainer.registry import RegistryError
from retrainer.registry.history import OUTSIDE
from retrainer.replay.backtest import BacktestResult, run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, write_scenario
from retrainer.steps.operator import RegistryCommands

pytestmark = pytest.mark.integration

STREAM = (
    ScriptedBatch("b1", "stable", "init"),
    ScriptedBatch("b2", "stable", "none"),
    ScriptedBatch("b3", "concept change", "retrain", concept=1),
    ScriptedBatch("b4", "new concept", "none", concept=1),
)


def _replay(root: Path, mode: str) -> BacktestResult:
    write_scenario(root / "batches", rows=1200, seed=5, script=STREAM)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET},
                                      "promotion": {"mode": mode},
                                      "policy": {"followup_after_batches": None}}), encoding="utf-8")
    return run_backtest(root / "batches", TARGET, config_path=config, workdir=root / "work", name="pumps")


def _client(result: BacktestResult) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{result.workdir / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def auto(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    return _replay(tmp_path_factory.mktemp("auto"), "auto")


@pytest.fixture(scope="module")
def manual(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    return _replay(tmp_path_factory.mktemp("manual"), "manual")


def test_status_shows_the_aliases_and_every_move_the_cycles_made(auto: BacktestResult) -> None:
    """After a promotion, status names champion v2, previous v1, no challenger, and a history of each alias move."""
    status = RegistryCommands.open(load_config(auto.config_path)).status()
    assert (status["champion"], status["previous_champion"], status["challenger"]) == ("2", "1", None)
    moves = [(m["alias"], m["from_version"], m["to_version"]) for m in status["history"]]
    assert moves == [
        ("champion", None, "1"),
        ("challenger", None, "2"),
        ("previous-champion", None, "1"),
        ("champion", "1", "2"),
        ("challenger", "2", None),
    ]
    promotion = status["history"][3]
    assert promotion["actor"] == "retrainer (auto)"
    assert promotion["reason"].startswith("gate passed")


def test_rollback_restores_the_previous_champion_and_is_recorded(
    auto: BacktestResult, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """`rollback` puts @champion back on v1, keeps v2 as previous (a second rollback rolls forward), says who,
    and tells the webhook."""
    url, received = receiver
    config = load_config(auto.config_path)
    config = config.model_copy(update={"notifications": config.notifications.model_copy(update={"webhook_url": url})})
    commands = RegistryCommands.open(config)
    assert commands.rollback("complaints since v2") == ("2", "1")
    assert [(b["events"], b["rollback"]["from_version"], b["rollback"]["to_version"], b["rollback"]["reason"])
            for b in received] == [(["rollback"], "2", "1", "complaints since v2")]
    status = commands.status()
    assert (status["champion"], status["previous_champion"]) == ("1", "2")
    last = status["history"][-2:]
    assert [(m["alias"], m["from_version"], m["to_version"]) for m in last] == [
        ("champion", "2", "1"), ("previous-champion", "1", "2")]
    assert all("retrainer rollback" in m["actor"] and m["reason"] == "complaints since v2" for m in last)
    assert commands.rollback(None) == ("1", "2")  # and forward again
    assert commands.status()["champion"] == "2"


def test_a_move_in_the_mlflow_ui_is_noticed_and_the_next_cycle_scores_with_it(auto: BacktestResult) -> None:
    """Moving @champion through the MLflow client (as the UI does) is put on record, and the next cycle uses it."""
    from retrainer.pipeline.flows import monitor_batch

    client = _client(auto)
    client.set_registered_model_alias("pumps", "champion", "1")
    record = monitor_batch(str(auto.config_path), str(auto.workdir.parent / "batches" / "b4.csv"))
    assert record["champion_version"] == "1"
    history = RegistryCommands.open(load_config(auto.config_path)).status()["history"]
    noticed = [m for m in history if m["actor"] == OUTSIDE]
    assert noticed
    assert (noticed[-1]["alias"], noticed[-1]["to_version"]) == ("champion", "1")


def test_promote_refuses_a_version_retrainer_did_not_register(auto: BacktestResult) -> None:
    """Only versions this pipeline trained may serve: a hand-registered version is refused, nothing moves."""
    client = _client(auto)
    before = client.get_model_version_by_alias("pumps", "champion").version
    run = client.create_run(client.get_experiment_by_name("pumps-training").experiment_id)
    foreign = client.create_model_version("pumps", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    with pytest.raises(RegistryError, match="refused: it has no MLmodel file"):
        RegistryCommands.open(load_config(auto.config_path)).promote(str(foreign.version), None, force=True)
    assert client.get_model_version_by_alias("pumps", "champion").version == before


def test_forcing_past_the_gate_needs_a_reason_and_rollback_does_not_restore_it_silently(auto: BacktestResult) -> None:
    """A version that failed its gate serves only by `promote --force --reason`, and the history says it was
    forced and why; once rolled back, a second rollback does not quietly put it back in service."""
    client = _client(auto)
    commands = RegistryCommands.open(load_config(auto.config_path))
    current = commands.status()["champion"]
    failed = "1" if current == "2" else "2"
    client.set_model_version_tag("pumps", failed, "retrainer.gate", "failed")
    client.set_model_version_tag("pumps", failed, "retrainer.gate_champion", current)
    with pytest.raises(RegistryError, match=f"version {failed} failed its gate .*use --force --reason"):
        commands.promote(failed, None, force=False)
    with pytest.raises(RegistryError, match="say why it should serve anyway with --reason"):
        commands.promote(failed, None, force=True)
    assert commands.status()["champion"] == current

    assert commands.promote(failed, "hotfix for the March outage", force=True) == (current, failed)
    moved = [m for m in commands.status()["history"] if m["alias"] == "champion"][-1]
    assert moved["reason"] == (f"hotfix for the March outage (forced: version {failed} failed its gate "
                               "(see its description))")

    assert commands.rollback("the forced version misbehaves") == (failed, current)
    with pytest.raises(RegistryError, match=f"@previous-champion is version {failed}, which failed its gate"):
        commands.rollback(None)
    assert commands.status()["champion"] == current
    assert commands.rollback("reviewed: back to the forced one", force=True) == (current, failed)
    moved = [m for m in commands.status()["history"] if m["alias"] == "champion"][-1]
    assert moved["reason"] == f"reviewed: back to the forced one (forced: version {failed} failed its gate)"
    # The models list in the MLflow UI shows the start of the registered model's description: what serves and why.
    description = client.get_registered_model("pumps").description
    assert description.startswith(f"@champion: version {failed} since ")
    assert f"reviewed: back to the forced one (forced: version {failed} failed its gate) (" in description
    assert "(retrainer rollback))" in description


def test_manual_mode_waits_for_a_person_then_promote_approves(manual: BacktestResult) -> None:
    """In manual mode a passing challenger is tagged awaiting approval and v1 keeps serving until `promote`."""
    records = {r.batch: r for r in manual.records}
    assert records["b3"].decision == "retrain"
    assert not records["b3"].promoted
    assert records["b4"].champion_version == "1"
    commands = RegistryCommands.open(load_config(manual.config_path))
    status = commands.status()
    assert status["awaiting_approval"] == ["2"]
    assert status["challenger"] == "2"
    assert status["champion"] == "1"
    assert commands.promote("2", "reviewed the gate report", force=False) == ("1", "2")
    status = commands.status()
    assert (status["champion"], status["previous_champion"], status["challenger"]) == ("2", "1", None)
    assert status["awaiting_approval"] == []
    approval = [m for m in status["history"] if m["alias"] == "champion"][-1]
    assert "retrainer promote" in approval["actor"]
    assert approval["reason"] == "reviewed the gate report"
    with pytest.raises(RegistryError, match="already @champion"):
        commands.promote("2", None, force=False)


def test_manual_mode_follows_the_alias_a_person_sets_in_the_ui_and_rollback_restores(manual: BacktestResult) -> None:
    """In manual mode, whatever @champion a person sets through the MLflow client is what the next cycle
    scores with; `rollback` then restores the previous champion in one command."""
    from retrainer.pipeline.flows import monitor_batch

    commands = RegistryCommands.open(load_config(manual.config_path))
    client = _client(manual)
    fresh = write_scenario(manual.workdir.parent / "later", rows=600, seed=77,
                           script=(ScriptedBatch("c1", "new concept", "none", concept=1),
                                   ScriptedBatch("c2", "new concept", "none", concept=1)))
    client.set_registered_model_alias("pumps", "champion", "1")  # as the MLflow UI does
    record = monitor_batch(str(manual.config_path), str(fresh[0]))
    assert record["champion_version"] == "1"
    assert record["decision"] != "reject_batch"
    client.set_registered_model_alias("pumps", "champion", "2")
    record = monitor_batch(str(manual.config_path), str(fresh[1]))
    assert record["champion_version"] == "2"
    assert record["decision"] != "reject_batch"
    history = commands.status()["history"]
    assert [(m["from_version"], m["to_version"]) for m in history if m["actor"] == OUTSIDE][-2:] == [
        ("2", "1"), ("1", "2")]
    before = commands.status()["previous_champion"]
    assert commands.rollback("the UI move was a mistake") == ("2", before)
    assert commands.status()["champion"] == before


class _RacedOnce:
    """A real MlflowClient whose first alias write fails the way MLflow's SQL store fails when another
    process deletes or inserts the alias row mid-write (seen in CI: a promotion removing @challenger while
    a racing retrain set it)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.alias_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import BAD_REQUEST

        self.alias_writes += 1
        if self.alias_writes == 1:
            raise MlflowException("UPDATE statement on table 'registered_model_aliases' expected to update 1 row(s); "
                                  "0 were matched.", error_code=BAD_REQUEST)
        self._client.set_registered_model_alias(name, alias, version)


def test_an_alias_write_that_raced_another_process_is_tried_again(tmp_path: Path) -> None:
    """A conflicting alias write (BAD_REQUEST from the store) is retried: the alias moves and the history
    records one move; a version that does not exist is refused at once, not retried."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retrainer.registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config_path = tmp_path / "retrainer.yaml"
    config_path.write_text(yaml.safe_dump({"model": {"name": "pumps", "target": TARGET},
                                           "mlflow": {"tracking_uri": uri}}), encoding="utf-8")
    config = load_config(config_path)
    plain = MlflowClient(tracking_uri=uri, registry_uri=uri)
    plain.create_registered_model(config.registered_model)
    plain.create_model_version(config.registered_model, source=str(tmp_path / "model"))
    client = _RacedOnce(plain)
    registry = ModelRegistry(client, config)
    registry.move_alias("challenger", "1", "retrainer", "decision d1: drift")
    assert str(plain.get_model_version_by_alias(config.registered_model, "challenger").version) == "1"
    assert client.alias_writes == 2
    assert [(m.alias, m.to_version) for m in registry.history.moves()] == [("challenger", "1")]
    with pytest.raises(MlflowException) as refused:
        registry.move_alias("champion", "9", "retrainer", "no such version")
    assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.alias_writes == 3


def test_a_retrain_on_a_concept_change_names_the_features_whose_role_changed(auto: BacktestResult) -> None:
    """After the concept change (failures now follow pressure and rpm, no longer heat and vibration), the retrain's
    record and the challenger's gate report name the features the new model leans on differently, and status
    shows what each version leans on most."""
    retrain = next(record for record in auto.records if record.decision == "retrain")
    assert retrain.gate is not None
    assert retrain.challenger_version is not None
    shifted = retrain.gate.importance_shift
    assert shifted, "no feature named"
    named = {line.split(":")[0] for line in shifted}
    assert named & {"pressure_bar", "rpm", "temperature_c", "vibration_mm_s"}, shifted
    client = _client(auto)
    description = client.get_model_version("pumps", retrain.challenger_version).description
    assert "leans on differently" in description
    status = RegistryCommands.open(load_config(auto.config_path)).status()
    tops = {v["version"]: v.get("top_features", "") for v in status["versions"]}
    assert tops["1"]
    assert tops["2"]
    assert tops["1"].split()[0] != tops["2"].split()[0], tops
