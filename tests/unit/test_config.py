"""Configuration (retrainer.config): YAML + environment, resolved paths, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.config import ConfigError, RetrainerConfig, build_config, load_config, write_config


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_config_gets_defaults_beside_its_folder(tmp_path: Path) -> None:
    """A config naming only the target gets a workdir, suites folder and MLflow store beside it."""
    config = build_config({"model": {"target": "label"}}, tmp_path)
    assert config.model.name == "model"
    assert config.model.task is None
    assert config.storage.workdir == tmp_path.resolve()
    assert config.storage.suites_dir == tmp_path.resolve() / "expectations"
    assert config.suite_path == tmp_path.resolve() / "expectations" / "model.json"
    assert config.tracking_uri == f"sqlite:///{(tmp_path.resolve() / 'mlflow.db').as_posix()}"
    assert config.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert config.registered_model == "model"
    assert config.training_experiment == "model-training"
    assert config.cycles_experiment == "model-cycles"
    assert config.promotion.mode == "auto"
    assert config.policy.drift_persistence_batches == 2


def test_default_tracking_uri_is_a_sqlite_file_under_the_configured_workdir(tmp_path: Path) -> None:
    """Without a tracking URI, MLflow runs on an absolute SQLite file inside the workdir."""
    path = _write(tmp_path / "cfg" / "retrainer.yaml", "model: {target: y, name: pumps}\nstorage: {workdir: state}\n")
    config = load_config(path)
    workdir = (tmp_path / "cfg" / "state").resolve()
    assert config.storage.workdir == workdir
    assert config.tracking_uri == f"sqlite:///{(workdir / 'mlflow.db').as_posix()}"
    assert config.tracking_uri.startswith("sqlite:////")
    assert config.storage.accepted_dir("pumps") == workdir / "models" / "pumps" / "accepted"
    assert config.registered_model == "pumps"


def test_relative_paths_resolve_against_the_config_folder_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative workdir, suites folder and SQLite URI are read from the config file's folder."""
    path = _write(
        tmp_path / "deploy" / "retrainer.yaml",
        "model: {target: y}\n"
        "storage: {workdir: ./work, suites_dir: ../suites}\n"
        "mlflow: {tracking_uri: 'sqlite:///db/mlflow.db'}\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.storage.workdir == (tmp_path / "deploy" / "work").resolve()
    assert config.storage.suites_dir == (tmp_path / "suites").resolve()
    assert config.tracking_uri == f"sqlite:///{(tmp_path / 'deploy' / 'db' / 'mlflow.db').resolve().as_posix()}"


def test_non_sqlite_tracking_uri_is_kept_as_written(tmp_path: Path) -> None:
    """A server tracking URI is used exactly as written in the file."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\nmlflow: {tracking_uri: 'http://mlflow:5000'}\n")
    assert load_config(path).tracking_uri == "http://mlflow:5000"


def test_environment_overrides_one_setting_and_keeps_the_rest_of_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RETRAINER_PROMOTION__MODE=manual wins over the file while the section's other values stay."""
    path = _write(
        tmp_path / "c.yaml",
        "model: {target: y}\n"
        "promotion: {mode: auto, margin: 0.02, confidence: 0.9}\n"
        "policy: {cooldown_batches: 4}\n",
    )
    monkeypatch.setenv("RETRAINER_PROMOTION__MODE", "manual")
    config = load_config(path)
    assert config.promotion.mode == "manual"
    assert config.promotion.margin == 0.02
    assert config.promotion.confidence == 0.9
    assert config.policy.cooldown_batches == 4
    assert config.model.target == "y"


def test_environment_override_applies_without_the_section_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment setting works even when the file has no such section."""
    monkeypatch.setenv("RETRAINER_POLICY__MAX_RELATIVE_DROP", "0.1")
    config = build_config({"model": {"target": "y"}}, tmp_path)
    assert config.policy.max_relative_drop == 0.1
    assert config.policy.drift_share_threshold == 0.3


def test_invalid_environment_value_is_a_config_error_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value in an environment override names the setting, and the variable it came from, not the file."""
    monkeypatch.setenv("RETRAINER_PROMOTION__MODE", "sometimes")
    with pytest.raises(ConfigError, match=r"^environment variable RETRAINER_PROMOTION__MODE \(setting 'promotion\.mode' "
                                          r"of config\): Input should be"):
        build_config({"model": {"target": "y"}}, tmp_path)


def test_mlflow_string_form_loads_the_shared_mlflow_file(tmp_path: Path) -> None:
    """`mlflow: path/to/mlflow.yaml` reads MLflow settings from that file, paths relative to it."""
    _write(
        tmp_path / "mlflow_config" / "mlflow.yaml",
        "tracking_uri: 'sqlite:///store/mlflow.db'\n"
        "training_experiment: '{model}-train'\n"
        "aliases: {champion: prod}\n",
    )
    path = _write(tmp_path / "models" / "pumps.yaml",
                  "model: {target: y, name: pumps}\nmlflow: ../mlflow_config/mlflow.yaml\n")
    config = load_config(path)
    expected_db = (tmp_path / "mlflow_config" / "store" / "mlflow.db").resolve().as_posix()
    assert config.tracking_uri == f"sqlite:///{expected_db}"
    assert config.training_experiment == "pumps-train"
    assert config.mlflow.aliases.champion == "prod"
    assert config.mlflow.aliases.previous_champion == "previous-champion"


def test_mlflow_string_form_pointing_nowhere_is_a_config_error(tmp_path: Path) -> None:
    """A missing shared MLflow file is reported with its path."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\nmlflow: nowhere/mlflow.yaml\n")
    message = _load_error(path)
    assert message == f"{(tmp_path / 'nowhere' / 'mlflow.yaml').resolve()}: config file not found"


def test_unknown_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    """A misspelt setting is refused with a one-line message naming it and the file."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\npolicy: {drift_treshold: 0.2}\n")
    message = _load_error(path)
    assert message.startswith(f"{path.resolve()}: setting 'policy.drift_treshold'")
    assert "Extra inputs are not permitted" in message


def test_unknown_top_level_section_is_a_config_error(tmp_path: Path) -> None:
    """An unknown top-level section is refused with its name."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\nalerts: {slack: true}\n")
    assert "setting 'alerts'" in _load_error(path)


def test_wrong_type_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    """A value of the wrong type is refused with a one-line message naming the setting."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\npolicy: {drift_persistence_batches: often}\n")
    message = _load_error(path)
    assert message.startswith(f"{path.resolve()}: setting 'policy.drift_persistence_batches': ")
    assert "integer" in message


def test_out_of_range_value_is_a_config_error(tmp_path: Path) -> None:
    """A threshold outside its allowed range is refused."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\npolicy: {drift_share_threshold: 1.5}\n")
    assert "setting 'policy.drift_share_threshold'" in _load_error(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported as not found."""
    path = tmp_path / "absent.yaml"
    assert _load_error(path) == f"{path.resolve()}: config file not found"


def test_invalid_yaml_is_a_config_error_with_the_line(tmp_path: Path) -> None:
    """Broken YAML is reported with the line where parsing failed, not a traceback."""
    path = _write(tmp_path / "c.yaml", "model:\n  target: y\npolicy: {cooldown_batches: 1\n")
    message = _load_error(path)
    assert message.startswith(f"{path.resolve()}: not valid YAML at line ")


def test_top_level_list_is_a_config_error(tmp_path: Path) -> None:
    """A YAML file that is not a mapping of sections is refused."""
    path = _write(tmp_path / "c.yaml", "- model\n- policy\n")
    assert "expected a mapping of sections" in _load_error(path)


def test_missing_target_is_a_config_error_naming_model_target(tmp_path: Path) -> None:
    """A model without a target column is refused, naming model.target."""
    path = _write(tmp_path / "c.yaml", "model: {name: pumps}\n")
    assert _load_error(path) == f"{path.resolve()}: setting 'model.target': Field required"


def test_empty_file_is_a_config_error_naming_model(tmp_path: Path) -> None:
    """An empty config file is refused because the model section is required."""
    path = _write(tmp_path / "c.yaml", "")
    assert "setting 'model'" in _load_error(path)


def test_storage_given_as_a_string_is_a_config_error(tmp_path: Path) -> None:
    """`storage: ./work` (a path instead of a section) is refused with a ConfigError, not a traceback."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\nstorage: ./work\n")
    assert "storage" in _load_error(path)


def test_mlflow_given_as_a_list_is_a_config_error(tmp_path: Path) -> None:
    """An mlflow section that is neither a mapping nor a file path is refused with a ConfigError."""
    path = _write(tmp_path / "c.yaml", "model: {target: y}\nmlflow: [a, b]\n")
    assert "mlflow" in _load_error(path)


def test_written_config_loads_back_the_same(tmp_path: Path) -> None:
    """A config written out with write_config loads back with the same settings."""
    config = build_config(
        {"model": {"target": "y", "name": "pumps", "features": ["a", "b"]}, "promotion": {"mode": "manual"}},
        tmp_path,
    )
    out = tmp_path / "saved" / "retrainer.yaml"
    write_config(config, out)
    again = load_config(out)
    assert isinstance(again, RetrainerConfig)
    assert again.model_dump() == config.model_dump()
