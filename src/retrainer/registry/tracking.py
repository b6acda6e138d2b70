"""The MLflow connection and the one run each monitoring cycle leaves behind."""

from __future__ import annotations

import json
import logging
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from retrainer.config import RetrainerConfig
from retrainer.errors import ServiceError

# How long a tracking server may take to accept a connection before it counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 5.0
# How long a server that took the connection may take to start answering (a busy or just-started one).
ANSWER_TIMEOUT_SECONDS = 15.0


def _quiet_mlflow() -> None:
    # MLflow logs store migrations and "Created version" at INFO on every call; the
    # pipeline's own timeline says what happened.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def connect(config: RetrainerConfig) -> Any:
    """An MlflowClient on the configured store, with the model's experiments created."""
    import mlflow
    from mlflow import MlflowClient

    _quiet_mlflow()
    check_reachable(config.tracking_uri)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    for name in (config.training_experiment, config.cycles_experiment):
        experiment_id(client, name, config.artifact_location)
    return client


def check_reachable(uri: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Fail fast, in one line, when a tracking server takes no connection, or (plain HTTP) takes one and
    does not answer: MLflow's own client would retry with backoff for minutes first. Only a connection and
    one bare request are tried: any HTTP answer, even an error, is a live server whose own errors and
    transient failures stay MLflow's to retry. Local stores (file, SQLite, a database URL) are not checked."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout) as connection:
            if parsed.scheme == "http":
                # A process that holds the port but hangs (or is not a web server) takes connections too.
                connection.settimeout(ANSWER_TIMEOUT_SECONDS)
                connection.sendall(f"GET /health HTTP/1.0\r\nHost: {parsed.hostname}\r\n\r\n".encode("ascii"))
                try:
                    answered = bool(connection.recv(1))
                except TimeoutError:
                    raise ServiceError(f"MLflow tracking server {uri} took the connection but did not answer within "
                                       f"{ANSWER_TIMEOUT_SECONDS:g} s (mlflow.tracking_uri)") from None
                if not answered:
                    raise ServiceError(f"MLflow tracking server {uri} closed the connection without answering "
                                       "(mlflow.tracking_uri)")
    except TimeoutError:
        raise ServiceError(f"MLflow tracking server {uri} is unreachable: no answer within {timeout:g} s "
                           "(mlflow.tracking_uri)") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ServiceError(f"MLflow tracking server {uri} is unreachable: {reason} (mlflow.tracking_uri)") from None


def experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of the MLflow experiment `name`, created (with `artifact_location`) when it does not exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def log_cycle(
    client: Any,
    config: RetrainerConfig,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    documents: dict[str, Any],
    files: list[Path],
) -> str:
    """One finished MLflow run for one cycle: the decision record and its evidence as artifacts."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    run = client.create_run(
        experiment_id(client, config.cycles_experiment, config.artifact_location),
        run_name=run_name,
        tags=tags,
    )
    run_id = run.info.run_id
    now = get_current_time_millis()
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and v == v],
        params=[Param(k, str(v)[:6000]) for k, v in params.items() if v is not None],
    )
    with tempfile.TemporaryDirectory() as folder:
        for name, document in documents.items():
            path = Path(folder) / name
            path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
            client.log_artifact(run_id, str(path))
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path="reports")
    client.set_terminated(run_id, "FINISHED")
    return str(run_id)


def log_late_metrics(client: Any, run_id: str, values: dict[str, float]) -> None:
    """Metrics measured after late labels, as step 1 beside the step-0 values the cycle logged."""
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 1) for k, v in values.items()])
    client.set_tag(run_id, "retrainer.late_labels", "true")


def tag_run(client: Any, run_id: str, tags: dict[str, str]) -> None:
    """Set tags on an MLflow run, one at a time."""
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def run_page(client: Any, tracking_uri: str, run_id: str) -> str | None:
    """The MLflow UI page of a run's artifacts when MLflow is a server (None for a local store)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    experiment = client.get_run(run_id).info.experiment_id
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}/artifacts"
