"""Trust, on a real MLflow store and real Prefect cycles: a registry writer cannot make the pipeline run
code, and a batch given as a symbolic link never takes its target away."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrainer.config import load_config
from retrainer.replay.scenario import ScriptedBatch, make_batch

from .conftest import initialise_model

pytestmark = pytest.mark.integration

KEY = "test-signing-key-not-a-secret"


class Payload:
    """Unpickling this runs a shell command that leaves a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)

    def predict(self, inputs: Any) -> Any:
        return np.zeros(len(inputs))


def _client(root: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def model(prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          receiver: tuple[str, list[dict[str, Any]]]) -> Path:
    """Champion v1 of `pumps`, signed with a key; `next.csv` waits; the webhook goes to `receiver`."""
    monkeypatch.setenv("RETRAINER_SIGNING_KEY", KEY)
    monkeypatch.setenv("RETRAINER_NOTIFICATIONS__WEBHOOK_URL", receiver[0])
    rng = np.random.default_rng(14)
    make_batch(ScriptedBatch("init", "stable", "init"), 0, 1200, rng).to_csv(tmp_path / "init.csv", index=False)
    make_batch(ScriptedBatch("next", "stable", "none"), 1, 1200, rng).to_csv(tmp_path / "next.csv", index=False)
    return Path(initialise_model(tmp_path, {}, tmp_path / "init.csv"))


def _forge(root: Path, logged_model: Any, tags_of: str, drop: tuple[str, ...] = ()) -> str:
    """Register `logged_model` as a new version of `pumps` carrying version `tags_of`'s tags (minus
    `drop`), and point @champion at it, as anyone with registry write access can."""
    client = _client(root)
    tags = {k: v for k, v in client.get_model_version("pumps", tags_of).tags.items() if k not in drop}
    forged = client.create_model_version("pumps", logged_model.model_uri, run_id=logged_model.run_id, tags=tags,
                                         model_id=logged_model.model_id)
    client.set_registered_model_alias("pumps", "champion", str(forged.version))
    return str(forged.version)


def _log_model(root: Path, model: Any, serialization_format: str) -> Any:
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    with mlflow.start_run(experiment_id=_client(root).get_experiment_by_name("pumps-training").experiment_id):
        return mlflow.sklearn.log_model(model, name="model", serialization_format=serialization_format,
                                        pip_requirements=["scikit-learn"])


def _accepted(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "models" / "pumps" / "accepted").glob("*.parquet"))


def test_a_forged_pickle_champion_with_copied_tags_is_refused_and_its_code_never_runs(
    model: Path, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """@champion on a pickle version carrying v1's tags: the cycle refuses it before unpickling (no
    marker file), records and posts the refusal, keeps the batch, and status and promote refuse it too."""
    from retrainer.pipeline.flows import monitor_batch
    from retrainer.registry import RegistryError
    from retrainer.steps.operator import RegistryCommands

    marker = tmp_path / "code-ran"
    forged = _forge(tmp_path, _log_model(tmp_path, Payload(marker), "pickle"), tags_of="1")

    record = monitor_batch(str(model), str(tmp_path / "next.csv"))

    assert not marker.exists(), "the forged model's code ran"
    assert record["decision"] == "none"
    assert record["champion_version"] == forged
    assert "saved as 'pickle'" in record["champion_refused"]
    assert record["reasons"] == [f"champion refused: {record['champion_refused']}"]
    assert record["metric"] is None
    assert record["drift_share"] is None
    assert _accepted(tmp_path) == ["000000__init.parquet", "000001__next.parquet"], "the batch is kept"
    alerts = [body for body in receiver[1] if "champion_refused" in body["events"]]
    assert len(alerts) == 1
    assert alerts[0]["record"]["batch"] == "next"

    commands = RegistryCommands.open(load_config(model))
    status = commands.status()
    assert status["champion"] == forged
    assert "saved as 'pickle'" in status["champion_refused"]
    assert status["signing"].startswith("on:")
    with pytest.raises(RegistryError, match="saved as 'pickle'"):
        commands.promote(forged, "try anyway", force=True)
    assert not marker.exists()


def test_a_forged_skops_version_with_copied_tags_fails_its_digest_and_its_signature(model: Path,
                                                                                    tmp_path: Path) -> None:
    """A skops model of someone else's making, with v1's tags copied: its digest does not match; with
    the digest tag dropped, its copied signature does not match its files either."""
    from sklearn.dummy import DummyClassifier

    from retrainer.pipeline.flows import monitor_batch

    outsider = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    logged = _log_model(tmp_path, outsider, "skops")
    _forge(tmp_path, logged, tags_of="1")
    first = monitor_batch(str(model), str(tmp_path / "next.csv"))
    assert "changed after it was registered (digest mismatch)" in first["champion_refused"]

    _forge(tmp_path, logged, tags_of="1", drop=("retrainer.model_digest",))
    make_batch(ScriptedBatch("later", "stable", "none"), 2, 1200, np.random.default_rng(3)).to_csv(
        tmp_path / "later.csv", index=False)
    second = monitor_batch(str(model), str(tmp_path / "later.csv"))
    assert "signature does not match" in second["champion_refused"]


def test_a_champion_whose_model_file_was_swapped_after_registration_is_refused(model: Path, tmp_path: Path) -> None:
    """Overwriting the champion's model file in the artifact store (with a valid skops model) is caught
    by its digest before it is loaded; the same version serves again once the file is put back."""
    import skops.io
    from sklearn.dummy import DummyClassifier

    from retrainer.pipeline.flows import monitor_batch
    from retrainer.steps import runtime as tasks

    [stored] = (tmp_path / "mlartifacts").rglob("model.skops")
    original = stored.read_bytes()
    stored.write_bytes(skops.io.dumps(DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1])))
    tasks._runtime.cache_clear()  # as in the next `retrainer run` process: nothing loaded yet

    record = monitor_batch(str(model), str(tmp_path / "next.csv"))
    assert record["champion_version"] == "1"
    assert "digest mismatch" in record["champion_refused"]

    stored.write_bytes(original)
    tasks._runtime.cache_clear()
    make_batch(ScriptedBatch("later", "stable", "none"), 2, 1200, np.random.default_rng(3)).to_csv(
        tmp_path / "later.csv", index=False)
    again = monitor_batch(str(model), str(tmp_path / "later.csv"))
    assert again["champion_refused"] is None
    assert again["metric"] > 0.7


def _tree_hash(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_run_refuses_a_symlinked_batch_and_touches_nothing_outside(model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`retrainer run` on a link to a file outside the landing folder (a bad batch that would be
    rejected): refused by name, exit 2, the target unchanged and nothing quarantined or recorded."""
    from retrainer.cli import main

    outside = tmp_path / "outside"
    outside.mkdir()
    decoy = outside / "precious.csv"
    decoy.write_text("not,a,batch\n1,2,3\n", encoding="utf-8")
    before = _tree_hash(outside)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "batch.csv").symlink_to(decoy)
    journal = tmp_path / "models" / "pumps" / "timeline.jsonl"
    journal_before = journal.read_bytes()

    assert main(["run", "--config", str(model), str(landing / "batch.csv")]) == 2
    error = capsys.readouterr().err
    assert "refused batch 'batch.csv': a symbolic link" in error
    assert "Traceback" not in error
    assert _tree_hash(outside) == before
    assert decoy.is_file()
    assert (landing / "batch.csv").is_symlink()
    assert not (tmp_path / "models" / "pumps" / "quarantine").exists()
    assert journal.read_bytes() == journal_before

    (landing / "bad\nname.csv").write_bytes((tmp_path / "next.csv").read_bytes())
    assert main(["run", "--config", str(model), str(landing / "bad\nname.csv")]) == 2
    assert "control characters" in capsys.readouterr().err
    assert journal.read_bytes() == journal_before


def test_a_champion_that_loads_but_cannot_predict_is_recorded_not_a_traceback(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that raises on predict (a library mismatch, say): the cycle records why, keeps the batch."""
    from retrainer.pipeline.flows import monitor_batch
    from retrainer.registry import ModelRegistry

    class Broken:
        def predict(self, inputs: Any) -> Any:
            raise ValueError("X has 3 features, but the model expects 10\nsecond line")

    monkeypatch.setattr(ModelRegistry, "load_model", lambda self, info, fresh=False: Broken())
    record = monitor_batch(str(model), str(tmp_path / "next.csv"))
    assert record["decision"] == "none"
    assert record["metric"] is None
    assert record["champion_refused"] == ("version 1 of 'pumps' loads but cannot predict this batch "
                                          "(ValueError: X has 3 features, but the model expects 10)")
    assert _accepted(tmp_path) == ["000000__init.parquet", "000001__next.parquet"]


def test_after_the_key_is_rotated_a_person_signs_the_champion_and_it_serves_again(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under a new key v1's signature no longer matches (refused, recorded); `retrainer sign 1` vouches
    for it under the new key and the next cycle scores with it; a pickle version cannot be signed."""
    from retrainer.cli import main
    from retrainer.pipeline.flows import monitor_batch
    from retrainer.steps import runtime as tasks

    monkeypatch.setenv("RETRAINER_SIGNING_KEY", "the-new-key")
    tasks._runtime.cache_clear()  # a new process under the new key
    refused = monitor_batch(str(model), str(tmp_path / "next.csv"))
    assert "signature does not match" in refused["champion_refused"]

    assert main(["sign", "--config", str(model), "1"]) == 0
    assert "version 1 signed" in capsys.readouterr().out
    tasks._runtime.cache_clear()
    make_batch(ScriptedBatch("later", "stable", "none"), 2, 1200, np.random.default_rng(3)).to_csv(
        tmp_path / "later.csv", index=False)
    served = monitor_batch(str(model), str(tmp_path / "later.csv"))
    assert served["champion_refused"] is None
    assert served["metric"] > 0.7

    marker = tmp_path / "code-ran"
    forged = _forge(tmp_path, _log_model(tmp_path, Payload(marker), "pickle"), tags_of="1")
    assert main(["sign", "--config", str(model), forged]) == 2
    assert "saved as 'pickle'" in capsys.readouterr().err
    assert not marker.exists()
