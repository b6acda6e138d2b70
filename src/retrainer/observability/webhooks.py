"""Webhook notifications: the decision record, posted as JSON to a URL people already watch."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

from retrainer.config import NotificationSettings
from retrainer.core.records import BatchRecord
from retrainer.errors import ServiceError


class NotificationError(ServiceError):
    """The webhook did not accept the notification."""


def events_of(record: BatchRecord) -> list[str]:
    """The events a record stands for: its decision, and `promote` when a challenger was promoted (by its
    retrain's gate, or from shadow)."""
    events: list[str] = [record.decision]
    if record.champion_moved:
        events.append("promote")
    if record.champion_refused:
        events.append("champion_refused")
    if record.rejection_streak is not None and record.rejection_streak.alert:
        events.append("rejection_streak")
    return events


def wanted(settings: NotificationSettings, record: BatchRecord, events: list[str] | None = None) -> list[str]:
    """The events of `record` (or the `events` given) that people asked to hear about."""
    if not settings.webhook_url:
        return []
    return [event for event in (events_of(record) if events is None else events) if event in settings.events]


def payload(model: str, events: list[str], record: BatchRecord) -> dict[str, Any]:
    """The webhook body of a batch's events: a one-line text for a chat channel, and the record itself."""
    summary = f"{model}: batch {record.batch} -> {record.decision}"
    if record.reasons:
        summary += f" ({'; '.join(record.reasons)})"
    return {"model": model, "events": events, "text": summary, "record": json.loads(record.model_dump_json())}


def rollback_payload(model: str, from_version: str, to_version: str, actor: str, reason: str) -> dict[str, Any]:
    """A rollback is not a batch's outcome: its body carries the alias move instead of a record."""
    return {"model": model, "events": ["rollback"],
            "text": f"{model}: @champion rolled back {from_version} -> {to_version} by {actor} ({reason})",
            "rollback": {"from_version": from_version, "to_version": to_version, "actor": actor, "reason": reason}}


def intake_failed_payload(model: str, batch: str, reason: str) -> dict[str, Any]:
    """A landed batch set aside after repeated unfinished cycles: someone has to look at it."""
    return {"model": model, "events": ["intake_failed"], "text": f"{model}: batch {batch} set aside: {reason}",
            "intake_failed": {"batch": batch, "reason": reason}}


def post(url: str, body: dict[str, Any], timeout_seconds: float) -> int:
    """POST JSON; returns the HTTP status, raises NotificationError on a refusal."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "retrainer"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310 (URL from config)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"webhook answered HTTP {exc.code}") from None


def send(settings: NotificationSettings, event: str, body: dict[str, Any]) -> None:
    """Post an event that is not a cycle's record (a rollback, a set-aside batch) when people asked
    for it; a webhook that fails is a warning: what happened stands either way."""
    if not settings.webhook_url or event not in settings.events:
        return
    try:
        post(settings.webhook_url, body, settings.timeout_seconds)
    except (OSError, NotificationError) as exc:
        logging.getLogger("retrainer").warning("retrainer: warning: %s webhook failed: %s", event, exc)
