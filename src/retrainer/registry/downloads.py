"""A version's model folder fetched from the store and checked before a byte of the model is
deserialised: its format from MLmodel alone first, then its digest and signature (`registry.trust`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from retrainer.config import RetrainerConfig
from retrainer.registry import trust
from retrainer.registry.versions import MODEL_DIGEST, MODEL_SIGNATURE, NOT_FOUND_CODES, REGISTERED_BY, ModelVersionInfo

T = TypeVar("T")


def checked_download(client: Any, config: RetrainerConfig, name: str, info: ModelVersionInfo, folder: Path) -> Path:
    """Download a version's model folder and check it (format first, from MLmodel alone; then its
    digest and signature); returns the model file to deserialise from this very copy."""
    try:
        local, model_file = download_checked_format(client, config, name, info, folder)
        key = trust.signing_key()
        if key is None:
            trust.warn_without_key()
        refusal = trust.provenance_refusal(name, trust.folder_digest(local), info.tags.get(MODEL_DIGEST),
                                           info.tags.get(MODEL_SIGNATURE), info.tags.get(REGISTERED_BY), key)
        if refusal is not None:
            raise trust.UntrustedModel(refusal)
    except trust.UntrustedModel as exc:
        raise trust.UntrustedModel(f"version {info.version} of '{name}': refused: {exc}") from None
    return model_file


def download_checked_format(client: Any, config: RetrainerConfig, name: str, info: ModelVersionInfo,
                            folder: Path) -> tuple[Path, Path]:
    """(model folder, model file) of a version, downloaded once its MLmodel alone said skops: the
    format is checked before a byte of the model itself is read."""
    local, _ = _download_after(client, config, name, info, folder, trust.check_format)
    return local, trust.model_file(local)


def download_external(client: Any, config: RetrainerConfig, name: str, info: ModelVersionInfo,
                      folder: Path) -> tuple[Path, trust.ExternalFormat]:
    """(model folder, its format) of a version registered elsewhere, downloaded once its MLmodel alone said
    it is a format `retrainer adopt` loads (`trust.check_external_format`)."""
    return _download_after(client, config, name, info, folder, trust.check_external_format)


def _download_after(client: Any, config: RetrainerConfig, name: str, info: ModelVersionInfo, folder: Path,
                    check: Callable[[Path], T]) -> tuple[Path, T]:
    """The version's MLmodel file fetched alone and `check`ed, then (only if it passed) its whole folder, with
    what the check said."""
    from mlflow.exceptions import MlflowException

    source = client.get_model_version_download_uri(name, info.version).rstrip("/")
    try:
        head = download(config, f"{source}/{trust.MLMODEL_FILE}", folder / "head")
    except (MlflowException, OSError) as exc:
        if isinstance(exc, MlflowException) and exc.error_code not in NOT_FOUND_CODES:
            raise  # an outage, not a verdict on the version
        raise trust.UntrustedModel("it has no MLmodel file (not an MLflow model)") from None
    checked = check(head)
    return download(config, source, folder / "model"), checked


def download(config: RetrainerConfig, artifact_uri: str, folder: Path) -> Path:
    """An artifact (file or folder) of the store, copied into `folder`."""
    import mlflow.artifacts

    folder.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(folder),
                                                    tracking_uri=config.tracking_uri,
                                                    registry_uri=config.tracking_uri))
