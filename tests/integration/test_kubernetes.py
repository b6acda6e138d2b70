"""The Kubernetes work pool (deploy/kubernetes, docs/kubernetes.md): its base job template rendered the way the
Kubernetes worker renders it for a flow run (prefect-kubernetes' own job configuration; no cluster needed),
with the job variables prefect.yaml gives the deployments (the worker's Prefect client on a real, temporary API),
and the worker's manifests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"


def _kubernetes_work_pool() -> dict[str, Any]:
    pool: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["definitions"][
        "kubernetes_work_pool"]
    return pool


def _rendered_job(job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest the worker would submit for a flow run of a deployment with these job variables."""
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads((KUBERNETES / "base-job-template.json").read_text(encoding="utf-8"))
    configuration = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, job_variables))
    configuration.prepare_for_flow_run(FlowRun(flow_id=uuid4(), name="brave-pump"))
    manifest: dict[str, Any] = configuration.job_manifest
    return manifest


def test_a_flow_run_job_runs_the_worker_image_with_the_resources_prefect_yaml_asks(prefect_api: str) -> None:
    pool = _kubernetes_work_pool()
    job = _rendered_job(pool["job_variables"])
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert job["metadata"]["namespace"] == "retrainer"
    assert container["image"] == pool["job_variables"]["image"]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}
    # The image's unprivileged user (uid 1000 in the Dockerfile) owns the state volume through fsGroup.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 1000
    assert pod["serviceAccountName"] == "retrainer"


def test_credentials_come_from_the_secret_and_settings_from_the_config_map(prefect_api: str) -> None:
    """PostgreSQL and MLflow credentials are secretKeyRefs (never values in the template); Prefect's own variables
    (the flow run's id) are added beside them by the worker; settings come from the ConfigMap."""
    job = _rendered_job(_kubernetes_work_pool()["job_variables"])
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    secret_keys = {name: item["valueFrom"]["secretKeyRef"] for name, item in env.items() if "valueFrom" in item}
    assert {name: (ref["name"], ref["key"]) for name, ref in secret_keys.items()} == {
        "MLFLOW_TRACKING_USERNAME": ("retrainer-secrets", "mlflow-tracking-username"),
        "MLFLOW_TRACKING_PASSWORD": ("retrainer-secrets", "mlflow-tracking-password"),
        "RETRAINER_INTAKE__LEDGER_URL": ("retrainer-secrets", "postgres-url"),
        "RETRAINER_PROMOTION__LOCK_URL": ("retrainer-secrets", "postgres-url"),
        "RETRAINER_SIGNING_KEY": ("retrainer-secrets", "signing-key"),
        "RETRAINER_NOTIFICATIONS__WEBHOOK_URL": ("retrainer-secrets", "webhook-url"),
    }
    assert secret_keys["RETRAINER_SIGNING_KEY"].get("optional") is True
    assert "optional" not in secret_keys["RETRAINER_INTAKE__LEDGER_URL"]
    assert "PREFECT__FLOW_RUN_ID" in env
    assert container["envFrom"] == [{"configMapRef": {"name": "retrainer-settings"}}]
    template = (KUBERNETES / "base-job-template.json").read_text(encoding="utf-8")
    assert "postgresql://" not in template
    assert "password" not in template.lower().replace("mlflow-tracking-password", "").replace(
        "mlflow_tracking_password", "")


def test_the_config_and_the_state_volume_are_mounted_where_the_image_expects_them(prefect_api: str) -> None:
    job = _rendered_job({**_kubernetes_work_pool()["job_variables"], "state_claim": "pumps-state"})
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts["config"]["mountPath"] == "/opt/retrainer/config"  # prefect.yaml's config_path is under it
    assert mounts["config"]["readOnly"] is True
    assert volumes["config"]["configMap"]["name"] == "retrainer-config"
    assert mounts["state"]["mountPath"] == "/var/lib/retrainer"
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "pumps-state"
    config_path = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["definitions"]["config"][
        "config_path"]
    assert config_path.startswith(mounts["config"]["mountPath"] + "/")


def test_the_worker_serves_the_work_pool_the_deployments_name() -> None:
    """The in-cluster worker starts on prefect.yaml's Kubernetes pool, runs the same image, may create Jobs, and
    reads the same settings as the Jobs (the ConfigMap's paths are on the state volume)."""
    documents = {(d["kind"], d["metadata"]["name"]): d
                 for d in yaml.safe_load_all((KUBERNETES / "retrainer.yaml").read_text(encoding="utf-8"))}
    pool = _kubernetes_work_pool()
    worker = documents[("Deployment", "retrainer-worker")]["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    command = container["command"]
    assert command[command.index("--pool") + 1] == pool["name"]
    assert command[command.index("--type") + 1] == "kubernetes"
    assert container["image"] == pool["job_variables"]["image"]
    rules = documents[("Role", "retrainer-worker")]["rules"]
    assert any("jobs" in rule["resources"] and "create" in rule["verbs"] for rule in rules)
    settings = documents[("ConfigMap", "retrainer-settings")]["data"]
    for key in ("RETRAINER_STORAGE__WORKDIR", "RETRAINER_STORAGE__SUITES_DIR", "RETRAINER_INTAKE__LANDING"):
        assert settings[key].startswith("/var/lib/retrainer/")
    assert "PREFECT_API_URL" in settings
    assert not any("postgresql://" in value or "PASSWORD" in key for key, value in settings.items())
