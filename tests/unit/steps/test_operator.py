"""What `retrainer promote` asks of a version before it may replace the champion (without --force)."""

from __future__ import annotations

from retrainer.steps.operator import _unproven


def test_a_version_that_passed_against_the_current_champion_may_be_promoted() -> None:
    """A challenger whose gate passed against the champion serving now needs no --force."""
    assert _unproven("passed", "3", "3") is None


def test_a_version_never_judged_needs_force() -> None:
    """A version whose retrain stopped before the gate has not earned @champion."""
    assert "never judged" in (_unproven(None, None, "3") or "")


def test_a_version_that_failed_its_gate_needs_force() -> None:
    """A refused challenger is not promoted by accident."""
    assert "failed its gate" in (_unproven("failed", "3", "3") or "")


def test_a_version_judged_against_an_older_champion_needs_force() -> None:
    """Passing against v3 says nothing about v6, which serves now."""
    reason = _unproven("passed", "3", "6") or ""
    assert "against version 3" in reason
    assert "current champion 6" in reason
