"""How old the champion is, measured on the stream's own clock when it has one."""

from __future__ import annotations

from datetime import datetime


def champion_age_days(trained_until: datetime | None, now: datetime | None) -> float | None:
    """Days between the end of the champion's training data and now (None when unknown).

    In a backtest `now` is the batch's latest event time, so replaying a year of history
    ages the champion by a year, not by the few minutes the replay takes.
    """
    if trained_until is None or now is None:
        return None
    return max(0.0, (now - trained_until).total_seconds() / 86_400)
