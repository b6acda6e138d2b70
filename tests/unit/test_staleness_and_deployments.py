"""The staleness check (core.staleness.staleness_retrain), the deployments of `retrainer serve` and their settings."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from retrainer.config import ConfigError, PolicySettings, build_config, load_config
from retrainer.core.staleness import staleness_retrain
from retrainer.pipeline.deployments import RETRAIN_PARAMETERS, retrain_trigger_parameters

# -- staleness_retrain -------------------------------------------------------------------------
SETTINGS = PolicySettings(max_champion_age_days=30, min_new_labelled_rows=200)


def test_no_retrain_when_the_age_limit_is_off() -> None:
    assert staleness_retrain(400.0, 400.0, 10_000, PolicySettings(max_champion_age_days=None)) is None


def test_no_retrain_when_the_champion_age_is_unknown() -> None:
    """No champion yet (or no training time on record): nothing to call stale."""
    assert staleness_retrain(None, None, 10_000, SETTINGS) is None


@pytest.mark.parametrize("age", [0.0, 12.5, 29.99, 30.0])
def test_no_retrain_while_the_champion_is_within_the_limit(age: float) -> None:
    assert staleness_retrain(age, age, 10_000, SETTINGS) is None


@pytest.mark.parametrize("rows", [0, 1, 199])
def test_no_retrain_without_enough_new_labelled_rows(rows: int) -> None:
    """An old champion is kept when there is too little new labelled data to train a challenger on."""
    assert staleness_retrain(45.0, 45.0, rows, SETTINGS) is None


def test_a_stale_champion_with_enough_new_labels_is_retrained_with_a_reason() -> None:
    reason = staleness_retrain(45.0, 45.0, 200, SETTINGS)
    assert reason is not None
    assert "45.0" in reason
    assert "30" in reason
    assert "staleness" in reason


def test_the_reason_shows_fractional_limits_and_no_labels_needed_when_configured() -> None:
    settings = PolicySettings(max_champion_age_days=7.5, min_new_labelled_rows=0)
    reason = staleness_retrain(8.25, 8.25, 0, settings)
    assert reason is not None
    assert "7.5" in reason
    assert "8.2" in reason


def test_the_staleness_check_agrees_with_the_batch_rule_at_the_boundary() -> None:
    """Just past the limit retrains, exactly at it does not (the same '>' the cycle's rule 2 uses)."""
    assert staleness_retrain(30.0, 30.0, 500, SETTINGS) is None
    assert staleness_retrain(30.01, 30.01, 500, SETTINGS) is not None


def test_a_champion_verified_since_its_training_counts_from_the_verification() -> None:
    """Old (400 d since its training data) but verified 10 days ago: not stale; 31 days ago: stale."""
    assert staleness_retrain(400.0, 10.0, 10_000, SETTINGS) is None
    reason = staleness_retrain(400.0, 31.0, 10_000, SETTINGS)
    assert reason == "champion age 400.0 d, unverified for 31.0 d > 30 d (staleness check)"


def test_the_hard_limit_applies_on_the_wall_clock_too() -> None:
    settings = PolicySettings(max_champion_age_days=None, retrain_every_days=90, min_new_labelled_rows=0)
    assert staleness_retrain(80.0, 0.0, 0, settings) is None
    assert staleness_retrain(91.0, 0.0, 0, settings) == "champion age 91.0 d > the hard limit of 90 d (staleness check)"


def test_the_policy_defaults_make_the_staleness_check_active() -> None:
    """Out of the box a 30-day limit and 200 new labelled rows apply."""
    defaults = PolicySettings()
    assert staleness_retrain(31.0, 31.0, 200, defaults) is not None
    assert staleness_retrain(31.0, 31.0, 199, defaults) is None
    assert staleness_retrain(29.0, 29.0, 10_000, defaults) is None


# -- retrain_trigger_parameters ----------------------------------------------------------------
def test_trigger_parameters_fill_the_retrain_flow_from_the_event() -> None:
    parameters = retrain_trigger_parameters("/srv/pumps/retrainer.yaml")
    assert parameters["config_path"] == "/srv/pumps/retrainer.yaml"
    assert set(parameters) == {"config_path", "batch_index", "window_start", "decision_id", "reasons"}
    for name in RETRAIN_PARAMETERS:
        assert parameters[name] == f"{{{{ event.payload.{name} }}}}"
    reasons = parameters["reasons"]
    assert reasons["__prefect_kind"] == "json"
    assert reasons["value"]["__prefect_kind"] == "jinja"
    assert "event.payload.reasons" in reasons["value"]["template"]
    assert "tojson" in reasons["value"]["template"]
    # Plain data: the trigger is stored as JSON by the Prefect server.
    assert json.loads(json.dumps(parameters)) == parameters


def test_trigger_parameters_match_the_retrain_flow_signature() -> None:
    import inspect

    from retrainer.pipeline.flows import retrain_on_request

    assert set(retrain_trigger_parameters("c.yaml")) == set(inspect.signature(retrain_on_request.fn).parameters)


def _render_like_an_automation(trigger: Any, payload: dict[str, Any], resource_id: str) -> tuple[bool, dict[str, Any]]:
    """What the Prefect server does with a deployment trigger: store it as an automation, match the
    event, and render the RunDeployment action's parameters for it (no server, no database)."""
    from prefect.server.events.schemas.automations import Automation, TriggeredAction
    from prefect.server.events.schemas.events import ReceivedEvent

    trigger.set_deployment_id(uuid4())
    automation = Automation.model_validate({**trigger.as_automation().model_dump(mode="json"), "id": str(uuid4())})
    [action] = automation.actions
    event = ReceivedEvent(id=uuid4(), occurred=datetime.now(UTC), event="retrainer.retrain.requested",
                          resource={"prefect.resource.id": resource_id, "prefect.resource.name": "pumps"},
                          payload=payload)
    triggered = TriggeredAction(automation=automation, triggered=datetime.now(UTC), triggering_labels={},
                                triggering_event=event, action=action)
    covered = automation.trigger.covers(event)  # type: ignore[union-attr]
    return covered, asyncio.run(action.render_parameters(triggered))  # type: ignore[union-attr]


def _retrain_trigger(config_path: str, model: str = "pumps") -> Any:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from retrainer.pipeline.tasks import RETRAIN_REQUESTED, model_resource

    return DeploymentEventTrigger(name=f"retrain {model} on request", expect={RETRAIN_REQUESTED},
                                  match={"prefect.resource.id": model_resource(model)["prefect.resource.id"]},
                                  parameters=retrain_trigger_parameters(config_path))


def test_an_event_renders_into_typed_retrain_parameters() -> None:
    """Reasons come out as a list of the very strings (even with '>' and quotes, which the
    HTML-safe `tojson` escapes), and batch_index as an int the flow accepts."""
    from retrainer.pipeline.flows import retrain_on_request

    reasons = ["champion age 45.0 d > 30 d (staleness check)", "drift in x1, x2 (share 0.50)", "it's \"quoted\" & <b>"]
    payload = {"batch_index": 12, "window_start": 9, "decision_id": "d-42", "reasons": reasons}
    covered, rendered = _render_like_an_automation(_retrain_trigger("/srv/pumps/retrainer.yaml"), payload,
                                                   "retrainer.model.pumps")
    assert covered
    assert rendered == {"config_path": "/srv/pumps/retrainer.yaml", "batch_index": 12, "window_start": 9,
                        "decision_id": "d-42", "reasons": reasons}
    validated = retrain_on_request.validate_parameters(rendered)
    assert validated["batch_index"] == 12
    assert isinstance(validated["batch_index"], int)
    assert validated["window_start"] == 9
    assert validated["reasons"] == reasons


def test_an_empty_reason_list_stays_a_list() -> None:
    payload = {"batch_index": 0, "window_start": 0, "decision_id": "d", "reasons": []}
    _, rendered = _render_like_an_automation(_retrain_trigger("c.yaml"), payload, "retrainer.model.pumps")
    assert rendered["reasons"] == []


def test_the_trigger_ignores_another_models_events() -> None:
    payload = {"batch_index": 1, "window_start": 1, "decision_id": "d", "reasons": ["x"]}
    covered, _ = _render_like_an_automation(_retrain_trigger("c.yaml"), payload, "retrainer.model.fans")
    assert not covered


# -- build_deployments and the serve settings --------------------------------------------------
def test_serve_builds_three_deployments_named_after_the_model(tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    from retrainer.pipeline.deployments import build_deployments

    config = build_config({"model": {"target": "y", "name": "pumps"}, "intake": {"landing": "drops"}}, tmp_path)
    config_path = tmp_path / "retrainer.yaml"
    monitor, staleness, retrain = build_deployments(config, config_path)
    assert [d.name for d in (monitor, staleness, retrain)] == ["pumps", "pumps", "pumps"]
    assert [d.flow_name for d in (monitor, staleness, retrain)] == ["monitor", "staleness-check", "retrain"]
    for deployment in (monitor, staleness, retrain):
        assert deployment.parameters == {"config_path": str(config_path)}
    [monitor_schedule] = monitor.schedules
    assert isinstance(monitor_schedule.schedule, IntervalSchedule)
    assert monitor_schedule.schedule.interval.total_seconds() == 600
    [staleness_schedule] = staleness.schedules
    assert isinstance(staleness_schedule.schedule, CronSchedule)
    assert staleness_schedule.schedule.cron == "0 6 * * *"
    assert retrain.schedules == []
    [trigger] = retrain.triggers
    assert trigger.parameters == retrain_trigger_parameters(str(config_path))


def test_a_monitor_cron_replaces_the_interval_and_a_null_staleness_cron_turns_the_check_off(tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    from retrainer.pipeline.deployments import build_deployments

    config = build_config({"model": {"target": "y", "name": "pumps"}, "serve": {
        "monitor_cron": "*/15 * * * *", "staleness_cron": None, "timezone": "Europe/Berlin"}}, tmp_path)
    monitor, staleness, _ = build_deployments(config, tmp_path / "retrainer.yaml")
    [schedule] = monitor.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("*/15 * * * *", "Europe/Berlin")
    assert staleness.schedules == []


def test_serve_defaults(tmp_path: Path) -> None:
    serve = build_config({"model": {"target": "y"}}, tmp_path).serve
    assert serve.monitor_interval_seconds == 600
    assert serve.monitor_cron is None
    assert serve.staleness_cron == "0 6 * * *"
    assert serve.timezone == "UTC"
    assert serve.retrain_trigger == "event"


def test_serve_settings_from_a_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "retrainer.yaml"
    path.write_text("model: {target: y}\nserve: {monitor_interval_seconds: 60, retrain_trigger: inline}\n",
                    encoding="utf-8")
    monkeypatch.setenv("RETRAINER_SERVE__STALENESS_CRON", "30 2 * * 1")
    serve = load_config(path).serve
    assert serve.monitor_interval_seconds == 60
    assert serve.retrain_trigger == "inline"
    assert serve.staleness_cron == "30 2 * * 1"


@pytest.mark.parametrize(("serve", "setting"), [
    ({"monitor_intervall_seconds": 60}, "serve.monitor_intervall_seconds"),
    ({"schedule": "daily"}, "serve.schedule"),
    ({"retrain_trigger": "webhook"}, "serve.retrain_trigger"),
    ({"monitor_interval_seconds": 0}, "serve.monitor_interval_seconds"),
])
def test_bad_serve_settings_are_one_line_config_errors(tmp_path: Path, serve: dict[str, object],
                                                        setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"model": {"target": "y"}, "serve": serve}, tmp_path, source="r.yaml")
    assert f"r.yaml: setting '{setting}'" in str(info.value)
    assert "\n" not in str(info.value)


# -- promotion approval settings ---------------------------------------------------------------
def test_approval_defaults(tmp_path: Path) -> None:
    promotion = build_config({"model": {"target": "y"}}, tmp_path).promotion
    assert promotion.approval_in_prefect is True
    assert promotion.approval_timeout_seconds == 86400


def test_approval_settings_from_the_file(tmp_path: Path) -> None:
    promotion = build_config({"model": {"target": "y"}, "promotion": {
        "mode": "manual", "approval_in_prefect": False, "approval_timeout_seconds": 10}}, tmp_path).promotion
    assert promotion.mode == "manual"
    assert promotion.approval_in_prefect is False
    assert promotion.approval_timeout_seconds == 10


@pytest.mark.parametrize("timeout", [9, 0, -5])
def test_an_approval_timeout_under_ten_seconds_is_refused(tmp_path: Path, timeout: int) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"model": {"target": "y"}, "promotion": {"approval_timeout_seconds": timeout}}, tmp_path,
                     source="r.yaml")
    assert "r.yaml: setting 'promotion.approval_timeout_seconds'" in str(info.value)
    assert "10" in str(info.value)
