"""Policy comparison figures (pure): ground truth, detection delay, false retrains, the frontier."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from retrainer.replay.baselines import Baseline
from retrainer.replay.comparison import (
    BatchOutcome,
    ChangePoint,
    GroundTruth,
    GroundTruthError,
    PolicyRun,
    check_ground_truth,
    detection_delays,
    pareto_frontier,
    parse_ground_truth,
    run_from_records,
    summarise_run,
)

ORDER = [f"b{i}" for i in range(10)]


def test_ground_truth_accepts_names_and_kinds() -> None:
    truth = parse_ground_truth({"change_points": ["b4", {"batch": "b7", "kind": "gradual"}], "stable": [["b1", "b3"]]})
    assert truth.change_points == (ChangePoint("b4"), ChangePoint("b7", "gradual"))
    assert truth.stable == (("b1", "b3"),)


@pytest.mark.parametrize(("document", "message"), [
    ([], "expected a mapping"),
    ({"changes": ["b1"]}, "expected a mapping"),
    ({"change_points": [{"batch": "b1", "kind": "sudden"}]}, "kind 'sudden' is not one of"),
    ({"change_points": [3.5]}, "a change point is a batch name"),
    ({"stable": [["b1"]]}, "a stable stretch is [FIRST, LAST]"),
])
def test_ground_truth_errors_name_the_problem(document: object, message: str) -> None:
    with pytest.raises(GroundTruthError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_ground_truth(document)


def test_ground_truth_must_name_batches_of_the_stream() -> None:
    with pytest.raises(GroundTruthError, match="not in the stream: b42"):
        check_ground_truth(GroundTruth((ChangePoint("b42"),)), ORDER)
    with pytest.raises(GroundTruthError, match="ends before it starts"):
        check_ground_truth(GroundTruth(stable=(("b5", "b2"),)), ORDER)


def test_detection_delay_counts_batches_to_the_first_retrain_before_the_next_change() -> None:
    # Changes at 3 and 7: a retrain at 4 detects the first (delay 1); none in 7..9 misses the second.
    assert detection_delays([1, 4, 5], [3, 7], 10) == [1, None]
    # A retrain on the change batch itself is a delay of 0.
    assert detection_delays([7], [3, 7], 10) == [None, 0]


def _run(policy: str, retrained: set[str], metrics: dict[str, float]) -> PolicyRun:
    return PolicyRun(policy, [BatchOutcome(b, metrics.get(b), retrained=b in retrained, promoted=b in retrained)
                              for b in ORDER[1:]])


def test_summary_judges_only_the_common_batches_and_counts_false_retrains() -> None:
    truth = GroundTruth((ChangePoint("b5"),), (("b1", "b4"),))
    metrics = {b: 0.9 for b in ORDER} | {"b3": 0.1}
    run = _run("every-2", {"b2", "b4", "b6", "b8"}, metrics)
    summary = summarise_run(run, ORDER, scored=set(ORDER) - {"b3"}, metric_name="accuracy", truth=truth)
    assert summary.mean_metric == pytest.approx(0.9)  # b3 (rejected by the suite) is not judged
    assert summary.scored_batches == 8
    assert (summary.retrains, summary.promotions) == (4, 4)
    assert summary.detection_delays == {"b5": 1}
    assert summary.false_retrains == 2  # b2 and b4 fall in the stable stretch


def test_frontier_keeps_points_nothing_beats() -> None:
    points = [(0.90, 2), (0.91, 5), (0.85, 2), (0.91, 8), (None, 0), (0.80, 0)]
    assert pareto_frontier(points, higher_is_better=True) == [True, True, False, False, False, True]
    # For RMSE lower is better.
    assert pareto_frontier([(1.0, 3), (2.0, 1), (2.5, 3)], higher_is_better=False) == [True, True, False]


def test_configured_run_counts_a_rejected_batch_in_its_training_window() -> None:
    """A rejected batch that reached the accepted store would show as a retrain on rejected data."""
    def record(index: int, decision: str, window_start: int | None = None) -> SimpleNamespace:
        return SimpleNamespace(batch=f"b{index}", batch_index=index, decision=decision, metric=0.8,
                               champion_moved=decision == "retrain", reasons=[], window_start=window_start, shadow=None)

    records = [record(0, "init"), record(1, "none"), record(2, "reject_batch"), record(3, "retrain", 1)]
    clean = run_from_records("retrainer", records, accepted={0, 1, 3}, window_batches=3)
    leaked = run_from_records("retrainer", records, accepted={0, 1, 2, 3}, window_batches=3)
    assert [o.batch for o in clean.outcomes] == ["b1", "b2", "b3"]
    assert [o.trained_on_rejected for o in clean.outcomes] == [False, False, False]
    assert [o.trained_on_rejected for o in leaked.outcomes] == [False, False, True]


def test_baseline_schedules() -> None:
    assert [Baseline("every-k", 3).due(p) for p in range(1, 7)] == [False, False, True, False, False, True]
    assert all(Baseline("every-batch").due(p) for p in range(1, 4))
    assert not any(Baseline("never").due(p) for p in range(1, 4))
    assert Baseline("every-k", 4).name == "every-4"


def test_sweep_grid_from_the_command_line() -> None:
    from retrainer.replay.sweep import DEFAULT_GRID, grid_points, parse_grid

    assert parse_grid([]) == DEFAULT_GRID
    grid = parse_grid(["policy.max_relative_drop=0.02,0.1", "drift_persistence_batches=1,2,3"])
    assert grid == {"max_relative_drop": (0.02, 0.1), "drift_persistence_batches": (1.0, 2.0, 3.0)}
    assert len(grid_points(grid)) == 6


@pytest.mark.parametrize(("spec", "message"), [
    ("max_drop=0.1", "'max_drop' is not a policy setting"),
    ("max_relative_drop=a,b", "values must be numbers"),
    ("max_relative_drop=", "give NAME=V1,V2"),
])
def test_sweep_grid_errors_are_one_line(spec: str, message: str) -> None:
    from retrainer.config import ConfigError
    from retrainer.replay.sweep import parse_grid

    with pytest.raises(ConfigError, match=message):
        parse_grid([spec])


def test_backtest_refuses_a_bad_ground_truth_file_before_replaying(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from retrainer.cli import main

    folder = Path(str(tmp_path))
    (folder / "truth.yaml").write_text("change_points: [{batch: b1, kind: sometimes}]\n")
    assert main(["backtest", str(folder), "--target", "y", "--baselines", "--truth", str(folder / "truth.yaml")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("retrainer: error: ")
    assert "kind 'sometimes'" in error
    assert "\n" not in error
    assert not (folder / "retrainer-backtest").exists()


def test_backtest_checks_truth_batch_names_before_replaying(tmp_path: object,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A truth file naming a batch the folder does not hold fails in one line before the replay starts."""
    from pathlib import Path

    from retrainer.cli import main

    folder = Path(str(tmp_path))
    (folder / "b1.csv").write_text("x,y\n1,0\n")
    (folder / "b2.csv").write_text("x,y\n2,1\n")
    (folder / "truth.yaml").write_text("change_points: [b9]\nstable: [[b1, b2]]\n")
    workdir = folder / "work"
    assert main(["backtest", str(folder), "--target", "y", "--baselines", "--truth", str(folder / "truth.yaml"),
                 "--workdir", str(workdir)]) == 2
    assert "not in the stream: b9" in capsys.readouterr().err
    assert not workdir.exists()
