"""Choosing between challengers trained on different windows (pure)."""

from __future__ import annotations

from retrainer.core.training import pick_candidate


def test_the_more_accurate_classifier_wins() -> None:
    truth = ["a", "b", "a", "b"]
    best, scores = pick_candidate("classification", truth, [["a", "a", "a", "a"], ["a", "b", "a", "a"]])
    assert best == 1
    assert scores == [0.5, 0.75]


def test_a_tie_keeps_the_first_candidate() -> None:
    truth = ["ok", "fail", "ok", "fail"]
    best, _ = pick_candidate("classification", truth, [["ok", "ok", "ok", "fail"], ["ok", "fail", "ok", "ok"]])
    assert best == 0


def test_for_regression_the_lower_error_wins() -> None:
    truth = [1.0, 2.0, 3.0]
    best, scores = pick_candidate("regression", truth, [[1.5, 2.5, 3.5], [1.1, 2.0, 2.9]])
    assert best == 1
    assert scores[1] < scores[0]


def test_the_latest_window_ends_at_the_newest_accepted_batch() -> None:
    from retrainer.core.training import latest_window

    assert latest_window([0, 1, 2, 5, 6], 3) == (6, 4)
    assert latest_window([4, 5], 10) == (5, 4)  # no earlier than the first stored
    assert latest_window([], 3) is None
