"""Staleness, pure: the days a champion has served since it was last verified against the present."""

from __future__ import annotations

from retrainer.config import PolicySettings
from retrainer.core.decision import PastCycle
from retrainer.core.metrics import primary_metric
from retrainer.core.staleness import staleness_retrain, unverified_days

ACCURACY = primary_metric("classification")


def _settings() -> PolicySettings:
    return PolicySettings(max_champion_age_days=30.0, min_new_labelled_rows=200)


def test_a_gate_refusal_the_registry_remembers_verifies_the_champion_on_that_day() -> None:
    """The daily check has no batch record of the retrain it asked for: the registry's refusal, 3 days ago,
    counts as the champion's last verification."""
    history = [PastCycle(0, "init", champion_version="1", champion_age_days=0.0)]
    assert unverified_days(45.0, "1", history, ACCURACY, 0.9, _settings()) == 45.0
    assert unverified_days(45.0, "1", history, ACCURACY, 0.9, _settings(), refused_days_ago=3.0) == 3.0
    assert staleness_retrain(45.0, 3.0, 1000, _settings()) is None


def test_a_refusal_older_than_a_later_verification_changes_nothing() -> None:
    """Labels showed the champion holding at age 40; a refusal 20 days ago is older news."""
    history = [PastCycle(3, "none", champion_version="1", champion_age_days=40.0, metric_value=0.9)]
    assert unverified_days(45.0, "1", history, ACCURACY, 0.9, _settings(), refused_days_ago=20.0) == 5.0


def test_an_unknown_age_is_not_made_up() -> None:
    assert unverified_days(None, "1", [], ACCURACY, 0.9, _settings(), refused_days_ago=1.0) is None
