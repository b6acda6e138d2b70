"""Choosing between challengers trained on different windows (pure)."""

from __future__ import annotations

from retrainer.core.training import pick_candidate, plan_holdout


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


# -- the gate's holdout -------------------------------------------------------------------------
def test_a_large_newest_batch_alone_fills_the_holdout_at_its_usual_share() -> None:
    assert plan_holdout([(7, 2000), (6, 2000)], 0.3, 30) == {7: 600}


def test_small_batches_lend_the_same_share_of_the_next_newest_batches_until_the_minimum_is_met() -> None:
    """70-row batches: 30 % is 21 rows, below 30; the batch before adds its 21."""
    assert plan_holdout([(7, 70), (6, 70), (5, 70)], 0.3, 30) == {7: 21, 6: 21}


def test_with_no_other_fresh_batch_a_larger_share_of_the_newest_is_held_out_up_to_half() -> None:
    assert plan_holdout([(7, 70)], 0.3, 30) == {7: 30}
    # Half of 40 rows is all it may take: the gate then refuses, naming the holdout's size.
    assert plan_holdout([(7, 40)], 0.3, 30) == {7: 20}


def test_the_plan_never_takes_more_rows_than_a_batch_has() -> None:
    plan = plan_holdout([(3, 5), (2, 1)], 0.3, 30)
    assert plan == {3: 3, 2: 1}
