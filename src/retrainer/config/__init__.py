"""Configuration: typed settings loaded from a YAML file, overridable from the environment.

Environment variables win over the file: ``RETRAINER_<SECTION>__<FIELD>``, for example
``RETRAINER_PROMOTION__MODE=manual`` or ``RETRAINER_MLFLOW__TRACKING_URI=postgresql://…``.
Relative paths in the file are resolved against the file's folder, so a config works
from whatever directory the command is run in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from retrainer.config.sections import (
    AliasNames,
    ConfigError,
    DriftSettings,
    FairnessSettings,
    IntakeSettings,
    MlflowSettings,
    ModelSettings,
    NotificationSettings,
    ObservabilitySettings,
    PolicySettings,
    PromotionMode,
    PromotionSettings,
    SearchSettings,
    ServeSettings,
    StorageSettings,
    Task,
    TrainingSettings,
    ValidationSettings,
)

ENV_PREFIX = "RETRAINER_"

__all__ = [
    "AliasNames",
    "ConfigError",
    "DriftSettings",
    "FairnessSettings",
    "ENV_PREFIX",
    "IntakeSettings",
    "MlflowSettings",
    "ModelSettings",
    "NotificationSettings",
    "ObservabilitySettings",
    "PolicySettings",
    "PromotionMode",
    "PromotionSettings",
    "RetrainerConfig",
    "ServeSettings",
    "StorageSettings",
    "Task",
    "SearchSettings",
    "TrainingSettings",
    "ValidationSettings",
    "build_config",
    "load_config",
    "write_config",
]


class RetrainerConfig(BaseSettings):
    """A model's whole config: the file's sections, with the environment overriding them."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", nested_model_default_partial_update=True
    )

    model: ModelSettings
    policy: PolicySettings = Field(default_factory=PolicySettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment overrides the YAML file (passed as init values), so a deployment can
        change one setting without editing the committed file."""
        return (env_settings, init_settings)

    @property
    def tracking_uri(self) -> str:
        """The configured MLflow store, or a SQLite file under the work dir (zero set-up)."""
        return self.mlflow.tracking_uri or f"sqlite:///{(self.storage.workdir / 'mlflow.db').as_posix()}"

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep artifacts: the configured root; with an MLflow server, the
        server's own (its proxied artifact store); otherwise a folder under the work dir."""
        if self.mlflow.artifact_location:
            return self.mlflow.artifact_location
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.storage.workdir / "mlartifacts").resolve().as_uri()

    @property
    def training_experiment(self) -> str:
        """The MLflow experiment of training runs, named for this model."""
        return self.mlflow.training_experiment.format(model=self.model.name)

    @property
    def cycles_experiment(self) -> str:
        """The MLflow experiment holding one run per monitoring cycle, named for this model."""
        return self.mlflow.cycles_experiment.format(model=self.model.name)

    @property
    def registered_model(self) -> str:
        """The registered model's name in MLflow (model.name unless mlflow.registered_model says otherwise)."""
        return self.mlflow.registered_model or self.model.name

    @property
    def suite_path(self) -> Path:
        """The model's expectation suite file."""
        return self.storage.suite_path(self.model.name)

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data for writing the config back out (paths as strings).

        The webhook and Pushgateway URLs are left out: they often carry a token and belong in
        the environment, not in a file that may be committed.
        """
        return self.model_dump(mode="json", exclude={"notifications": {"webhook_url"},
                                                     "observability": {"pushgateway_url"},
                                                     "promotion": {"lock_url"},
                                                     "intake": {"ledger_url"}})

    @property
    def ledger_url(self) -> str:
        """The intake ledger's database: configured, or a SQLite file in the work dir (zero set-up)."""
        return self.intake.ledger_url or f"sqlite:///{(self.storage.workdir / 'intake.db').as_posix()}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (model:, policy:, …) at the top level")
    return data


def _resolve(base: Path, value: Any) -> Any:
    if value is None:
        return None
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else (base / path).resolve()


def _sqlite_uri_relative_to(base: Path, uri: str) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + (base / uri[len(prefix):]).resolve().as_posix()
    return uri


def build_config(data: dict[str, Any], base_dir: Path, source: str = "config") -> RetrainerConfig:
    """Validate plain data into a config; relative paths are taken from ``base_dir``."""
    data = {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}
    for section in ("storage", "mlflow"):
        value = data.get(section)
        if value is not None and not isinstance(value, dict) and not (section == "mlflow" and isinstance(value, str)):
            kind = "a mapping" if section == "storage" else "a mapping or the path of an MLflow settings file"
            raise ConfigError(f"{source}: setting '{section}': expected {kind}")
    mlflow_section = data.get("mlflow")
    if isinstance(mlflow_section, str):
        # `mlflow: ../mlflow_config/mlflow.yaml` shares one MLflow settings file between models.
        mlflow_file = _resolve(base_dir, mlflow_section)
        data["mlflow"] = _read_yaml(mlflow_file)
        mlflow_base = mlflow_file.parent
    else:
        mlflow_base = base_dir
    storage = data.setdefault("storage", {}) or {}
    data["storage"] = storage
    storage["workdir"] = _resolve(base_dir, storage.get("workdir", "."))
    storage["suites_dir"] = _resolve(base_dir, storage.get("suites_dir") or "expectations")
    intake = data.get("intake")
    if isinstance(intake, dict) and isinstance(intake.get("landing"), str) and "://" not in intake["landing"]:
        intake["landing"] = str(_resolve(base_dir, intake["landing"]))
    if isinstance(intake, dict) and isinstance(intake.get("ledger_url"), str):
        intake["ledger_url"] = _sqlite_uri_relative_to(base_dir, intake["ledger_url"])
    mlflow = data.get("mlflow") or {}
    if isinstance(mlflow.get("tracking_uri"), str):
        mlflow["tracking_uri"] = _sqlite_uri_relative_to(mlflow_base, mlflow["tracking_uri"])
    try:
        return RetrainerConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        variable = _environment_source(first["loc"])
        if variable is not None:  # the file is not at fault: say where the value came from
            raise ConfigError(f"environment variable {variable} (setting '{where}' of {source}): "
                              f"{first['msg']}") from None
        raise ConfigError(f"{source}: setting '{where}': {first['msg']}") from None


def _environment_source(location: tuple[Any, ...]) -> str | None:
    """The RETRAINER_* environment variable that set the setting at `location` (or its section), if one did."""
    names = {name.upper(): name for name in os.environ}
    parts = [str(part).upper() for part in location]
    for length in range(len(parts), 0, -1):
        candidate = ENV_PREFIX + "__".join(parts[:length])
        if candidate in names:
            return names[candidate]
    return None


def load_config(path: str | Path) -> RetrainerConfig:
    """Load a config file; raises ConfigError with a one-line reason."""
    path = Path(path).expanduser().resolve()
    return build_config(_read_yaml(path), path.parent, source=str(path))


def write_config(config: RetrainerConfig, path: Path) -> None:
    """Write a config back out as YAML (secrets left out, see `to_yaml_dict`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_yaml_dict(), sort_keys=False), encoding="utf-8")
