"""The deployments `retrainer serve` runs, one set per model (a deployment is named after its model):

- `monitor/<model>`: on the configured interval or cron, takes new batches from the landing location;
- `staleness-check/<model>`: daily by default, retrains a champion that grew too old;
- `retrain/<model>`: no schedule; started by the `retrainer.retrain.requested` event of its model
  (a deployment trigger, which the Prefect server turns into an automation), or by hand.

`prefect.yaml` at the repository's root declares the same three for a work pool.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from retrainer.config import RetrainerConfig
from retrainer.errors import UserError

# Event payload fields become the retrain flow's parameters.
RETRAIN_PARAMETERS = ("batch_index", "window_start", "decision_id")


def retrain_trigger_parameters(config_path: str) -> dict[str, Any]:
    """The retrain flow's parameters, filled from the triggering event (a list needs the json kind)."""
    parameters: dict[str, Any] = {"config_path": config_path}
    parameters |= {name: f"{{{{ event.payload.{name} }}}}" for name in RETRAIN_PARAMETERS}
    parameters["reasons"] = {"__prefect_kind": "json",
                             "value": {"__prefect_kind": "jinja", "template": "{{ event.payload.reasons | tojson }}"}}
    return parameters


def build_deployments(config: RetrainerConfig, config_path: Path) -> list[Any]:
    """The model's monitor, staleness-check and retrain deployments: their schedules from `serve`, and
    the retrain's trigger on its model's retrain-requested event."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.schedules import Cron, Interval

    from retrainer.pipeline.flows import monitor_landing, retrain_on_request, staleness_check
    from retrainer.pipeline.tasks import RETRAIN_REQUESTED, model_resource

    model, path = config.model.name, str(config_path)
    parameters = {"config_path": path}
    tags = ["retrainer", f"model:{model}"]
    serve = config.serve
    if serve.monitor_cron:
        monitor_schedule = Cron(serve.monitor_cron, timezone=serve.timezone)
    else:
        monitor_schedule = Interval(timedelta(seconds=serve.monitor_interval_seconds or 600))
    monitor = monitor_landing.to_deployment(
        name=model, parameters=parameters, tags=tags, schedules=[monitor_schedule],
        description=f"Take new batches of '{model}' from {config.intake.landing} through the cycle, exactly once.")
    staleness = staleness_check.to_deployment(
        name=model, parameters=parameters, tags=tags,
        schedules=[Cron(serve.staleness_cron, timezone=serve.timezone)] if serve.staleness_cron else [],
        description=f"Retrain '{model}' when its champion went unverified for longer than policy.max_champion_age_days.")
    trigger = DeploymentEventTrigger(
        name=f"retrain {model} on request",
        expect={RETRAIN_REQUESTED},
        match={"prefect.resource.id": model_resource(model)["prefect.resource.id"]},
        parameters=retrain_trigger_parameters(path),
    )
    retrain = retrain_on_request.to_deployment(
        name=model, parameters=parameters, tags=tags, triggers=[trigger],
        description=f"Train, judge and promote a challenger of '{model}'; started by {RETRAIN_REQUESTED}.")
    return [monitor, staleness, retrain]


def serve_deployments(config: RetrainerConfig, config_path: Path, limit: int) -> None:
    """Serve the model's three deployments from this process until it is stopped (`retrainer serve`)."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # the environment or the active Prefect profile
        raise UserError("serve needs a Prefect server for its schedules and events: start one "
                        "(`prefect server start`, or deploy/run-stack.sh) and set "
                        "PREFECT_API_URL=http://127.0.0.1:4200/api")
    serve(*build_deployments(config, config_path), limit=limit, pause_on_shutdown=False)
