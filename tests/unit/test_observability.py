"""Per-cycle observability: Prometheus samples (retrainer.observability.prometheus) and the JSON log line
(retrainer.observability.logs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retrainer.config import ObservabilitySettings
from retrainer.core.records import BatchRecord
from retrainer.observability.logs import cycle_log_line, write_cycle_log
from retrainer.observability.prometheus import DECISIONS, Sample, cycle_samples, pushed_features

FEATURES = ["temp_c", "vibration", "pressure", "site"]
WHEN = datetime(2024, 3, 5, 6, 7, 8, 123456, tzinfo=UTC)


def _record(**overrides: Any) -> BatchRecord:
    values: dict[str, Any] = {
        "batch": "pumps_2024_03_05",
        "rows": 250,
        "valid": True,
        "decision": "none",
        "batch_index": 7,
    }
    values.update(overrides)
    return BatchRecord(**values)


def _samples(record: BatchRecord, history: list[BatchRecord] | None = None,
             settings: ObservabilitySettings | None = None, features: list[str] | None = None) -> list[Sample]:
    return cycle_samples(record, history or [], settings or ObservabilitySettings(),
                         FEATURES if features is None else features, 1_700_000_000.0)


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == f"retrainer_{name}" and s.labels == labels]
    assert len(found) <= 1, f"{name} {labels} pushed {len(found)} times"
    return found[0] if found else None


def _names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}


# --- pushed_features --------------------------------------------------------------------------


def test_pushed_features_default_to_the_first_features_in_column_order() -> None:
    """Without a configured list, the first max_features features are pushed, in column order."""
    assert pushed_features(ObservabilitySettings(max_features=2), FEATURES) == ["temp_c", "vibration"]
    assert pushed_features(ObservabilitySettings(), FEATURES) == FEATURES


def test_pushed_features_follow_the_configured_list_and_its_order() -> None:
    """A configured feature list is pushed in its own order, cut at max_features."""
    settings = ObservabilitySettings(features=["site", "temp_c", "pressure"], max_features=2)
    assert pushed_features(settings, FEATURES) == ["site", "temp_c"]


def test_max_features_zero_pushes_no_feature() -> None:
    """max_features 0 turns per-feature drift series off."""
    assert pushed_features(ObservabilitySettings(max_features=0), FEATURES) == []


# --- cycle_samples ----------------------------------------------------------------------------


def test_the_cycle_basics_are_pushed_with_their_values() -> None:
    """The cycle's time, row count, rejection flag and promotion flag are pushed as plain gauges."""
    samples = _samples(_record(rows=250, promoted=True, decision="retrain"))
    assert _value(samples, "last_cycle_timestamp_seconds") == 1_700_000_000.0
    assert _value(samples, "batch_rows") == 250.0
    assert _value(samples, "batch_rejected") == 0.0
    assert _value(samples, "promoted") == 1.0
    rejected = _samples(_record(valid=False, decision="reject_batch"))
    assert _value(rejected, "batch_rejected") == 1.0
    assert _value(rejected, "promoted") == 0.0


@pytest.mark.parametrize("decision", DECISIONS)
def test_the_decision_is_pushed_one_hot(decision: str) -> None:
    """Each possible decision has a series; only the one taken is 1."""
    samples = _samples(_record(decision=decision))
    pushed = {s.labels["decision"]: s.value for s in samples if s.name == "retrainer_decision"}
    assert pushed == {d: float(d == decision) for d in ("none", "retrain", "reject_batch", "init")}


def test_champion_age_is_pushed_in_seconds() -> None:
    """The champion's age in days is pushed as seconds (days × 86 400)."""
    assert _value(_samples(_record(champion_age_days=1.5)), "champion_age_seconds") == 129_600.0
    assert _value(_samples(_record(champion_age_days=45.0)), "champion_age_seconds") == 45 * 86_400.0


def test_shift_measurements_are_pushed_with_their_values() -> None:
    """Drift share, dataset drift, prediction and target drift, OOD share and new labelled rows are pushed."""
    record = _record(drift_share=0.4, dataset_drift=True, prediction_drift=0.12, target_drift=0.05,
                     ood_share=0.3, new_labelled_rows=640)
    samples = _samples(record)
    assert _value(samples, "drift_share") == 0.4
    assert _value(samples, "dataset_drift") == 1.0
    assert _value(samples, "prediction_drift_score") == 0.12
    assert _value(samples, "target_drift_score") == 0.05
    assert _value(samples, "ood_share") == 0.3
    assert _value(samples, "new_labelled_rows") == 640.0
    assert _value(_samples(_record(dataset_drift=False)), "dataset_drift") == 0.0


def test_unmeasured_values_are_left_out_not_pushed_as_zero() -> None:
    """None and NaN measurements are left out of the push rather than reported as a value."""
    record = _record(drift_share=float("nan"), dataset_drift=None, prediction_drift=None, target_drift=float("nan"),
                     ood_share=None, champion_age_days=None, new_labelled_rows=None,
                     drift_scores={"temp_c": float("nan"), "vibration": 0.2})
    samples = _samples(record)
    names = _names(samples)
    for name in ("drift_share", "dataset_drift", "prediction_drift_score", "target_drift_score", "ood_share",
                 "champion_age_seconds", "new_labelled_rows", "metric", "estimated_metric", "champion_version"):
        assert f"retrainer_{name}" not in names
    assert [s.labels["feature"] for s in samples if s.name == "retrainer_feature_drift_score"] == ["vibration"]
    assert all(s.value == s.value for s in samples)


def test_feature_drift_scores_are_limited_to_max_features_in_column_order() -> None:
    """Per-feature drift scores are pushed for the first max_features features only, in column order."""
    scores = {"site": 0.9, "pressure": 0.7, "vibration": 0.02, "temp_c": 0.5}
    samples = _samples(_record(drift_scores=scores), settings=ObservabilitySettings(max_features=3))
    pushed = [(s.labels, s.value) for s in samples if s.name == "retrainer_feature_drift_score"]
    assert pushed == [({"feature": "temp_c"}, 0.5), ({"feature": "vibration"}, 0.02),
                      ({"feature": "pressure"}, 0.7)]


def test_feature_drift_scores_follow_the_configured_features_in_their_order() -> None:
    """With a configured features list, only those features' scores are pushed, in the list's order."""
    scores = {"site": 0.9, "pressure": 0.7, "vibration": 0.02, "temp_c": 0.5}
    settings = ObservabilitySettings(features=["site", "vibration", "unscored"])
    samples = _samples(_record(drift_scores=scores), settings=settings)
    pushed = [(s.labels["feature"], s.value) for s in samples if s.name == "retrainer_feature_drift_score"]
    assert pushed == [("site", 0.9), ("vibration", 0.02)]


def test_metrics_are_pushed_with_the_metric_name_as_label() -> None:
    """The realized and estimated metric and its spread are pushed labelled with the metric's name."""
    record = _record(metric_name="accuracy", metric=0.91, estimated_metric=0.88, estimated_metric_std=0.02)
    samples = _samples(record)
    assert _value(samples, "metric", metric="accuracy") == 0.91
    assert _value(samples, "estimated_metric", metric="accuracy") == 0.88
    assert _value(samples, "estimated_metric_stddev", metric="accuracy") == 0.02


def test_no_metric_is_pushed_without_a_metric_name() -> None:
    """A record without a metric name pushes no metric series, even with a value."""
    samples = _samples(_record(metric=0.9, estimated_metric=0.8))
    assert not {"retrainer_metric", "retrainer_estimated_metric"} & _names(samples)


def test_a_numeric_champion_version_is_pushed_and_another_one_is_not() -> None:
    """The champion's registry version is pushed when it is a number, and left out otherwise."""
    assert _value(_samples(_record(champion_version="12")), "champion_version") == 12.0
    assert "retrainer_champion_version" not in _names(_samples(_record(champion_version="v12")))


def test_stage_durations_are_pushed_per_stage() -> None:
    """Each stage's duration is pushed under the stage label."""
    samples = _samples(_record(stage_seconds={"validate": 1.25, "drift": 3.5}))
    assert _value(samples, "stage_duration_seconds", stage="validate") == 1.25
    assert _value(samples, "stage_duration_seconds", stage="drift") == 3.5


def test_totals_count_the_history_and_this_cycle() -> None:
    """Retrain, promotion and rejection totals count the model's past cycles plus this one."""
    history = [
        _record(decision="init", promoted=True),
        _record(decision="retrain", promoted=True),
        _record(decision="reject_batch", valid=False),
        _record(decision="retrain", promoted=False),
        _record(decision="none"),
    ]
    samples = _samples(_record(decision="retrain", promoted=True), history)
    assert _value(samples, "retrains_count") == 3.0
    assert _value(samples, "promotions_count") == 3.0
    assert _value(samples, "rejected_batches_count") == 1.0
    rejected = _samples(_record(decision="reject_batch", valid=False), history)
    assert _value(rejected, "retrains_count") == 2.0
    assert _value(rejected, "promotions_count") == 2.0
    assert _value(rejected, "rejected_batches_count") == 2.0


def test_only_low_cardinality_label_names_are_used() -> None:
    """Samples carry at most one label, and only feature, metric, decision or stage."""
    record = _record(drift_share=0.4, dataset_drift=True, prediction_drift=0.1, target_drift=0.1, ood_share=0.1,
                     drift_scores={f: 0.1 for f in FEATURES}, metric_name="accuracy", metric=0.9,
                     estimated_metric=0.8, estimated_metric_std=0.01, champion_age_days=3.0, new_labelled_rows=5,
                     champion_version="4", stage_seconds={"score": 1.0}, reasons=["x"], batch="b")
    samples = _samples(record, [_record(decision="retrain")])
    assert all(name.startswith("retrainer_") for name in _names(samples))
    assert {key for s in samples for key in s.labels} == {"feature", "metric", "decision", "stage"}
    assert all(len(s.labels) <= 1 for s in samples)


# --- cycle_log_line ---------------------------------------------------------------------------


def test_the_log_line_is_one_line_of_json() -> None:
    """The cycle's log entry is a single line that parses as one JSON object."""
    line = cycle_log_line("pumps", _record(reasons=["drift_share 0.40 > 0.30\nfor 2 batches"]), WHEN)
    assert "\n" not in line
    assert isinstance(json.loads(line), dict)


def test_the_log_timestamp_is_utc_with_a_z_suffix() -> None:
    """@timestamp is the cycle's UTC time in milliseconds, ending in Z."""
    document = json.loads(cycle_log_line("pumps", _record(), WHEN))
    assert document["@timestamp"] == "2024-03-05T06:07:08.123Z"


def test_the_log_timestamp_defaults_to_now_in_utc() -> None:
    """Without a given time, @timestamp is the current UTC time, ending in Z."""
    before = datetime.now(UTC)
    stamp = json.loads(cycle_log_line("pumps", _record()))["@timestamp"]
    after = datetime.now(UTC)
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after


@pytest.mark.parametrize(("overrides", "level"), [
    ({"decision": "reject_batch", "valid": False}, "warning"),
    ({"decision": "none", "retrain_error": "training failed: no rows"}, "warning"),
    ({"decision": "retrain", "retrain_error": "gate crashed"}, "warning"),
    ({"decision": "none"}, "info"),
    ({"decision": "retrain", "promoted": True}, "info"),
    ({"decision": "init"}, "info"),
])
def test_the_log_level_warns_on_rejections_and_retrain_errors(overrides: dict[str, Any], level: str) -> None:
    """log.level is "warning" for a rejected batch or a failed retrain, "info" otherwise."""
    document = json.loads(cycle_log_line("pumps", _record(**overrides), WHEN))
    assert document["log"]["level"] == level


def test_the_log_message_names_the_model_batch_decision_and_reasons() -> None:
    """The message says which model and batch, what was decided, and why."""
    record = _record(decision="retrain", reasons=["champion age 45.0 d > 30 d", "drift_share 0.60 > 0.30"])
    document = json.loads(cycle_log_line("pumps", record, WHEN))
    assert document["message"] == ("pumps: batch pumps_2024_03_05 -> retrain "
                                   "(champion age 45.0 d > 30 d; drift_share 0.60 > 0.30)")
    assert json.loads(cycle_log_line("pumps", _record(), WHEN))["message"] == "pumps: batch pumps_2024_03_05 -> none"


def test_the_log_line_carries_the_event_labels_and_the_whole_record() -> None:
    """The line has the ECS event and labels, and the decision record itself under "retrainer"."""
    record = _record(decision="reject_batch", valid=False, validation_failures=["column 'x' missing"],
                     drift_scores={"temp_c": 0.5})
    document = json.loads(cycle_log_line("pumps", record, WHEN))
    assert document["event"]["action"] == "reject_batch"
    assert document["event"]["outcome"] == "failure"
    assert document["labels"] == {"model": "pumps", "decision": "reject_batch"}
    assert document["retrainer"]["batch"] == "pumps_2024_03_05"
    assert BatchRecord.model_validate(document["retrainer"]) == record
    assert json.loads(cycle_log_line("pumps", _record(), WHEN))["event"]["outcome"] == "success"


# --- write_cycle_log --------------------------------------------------------------------------


def test_a_relative_log_file_is_appended_under_the_work_dir(tmp_path: Path) -> None:
    """A relative json_log path is a file under the work dir; each cycle appends one line."""
    first = cycle_log_line("pumps", _record(batch="b1"), WHEN)
    second = cycle_log_line("pumps", _record(batch="b2"), WHEN)
    write_cycle_log("logs/cycles.jsonl", tmp_path, first)
    write_cycle_log("logs/cycles.jsonl", tmp_path, second)
    lines = (tmp_path / "logs" / "cycles.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [first, second]
    assert [json.loads(line)["retrainer"]["batch"] for line in lines] == ["b1", "b2"]


def test_an_absolute_log_file_is_used_as_given(tmp_path: Path) -> None:
    """An absolute json_log path is written where it points, not under the work dir."""
    target = tmp_path / "elsewhere" / "cycles.jsonl"
    workdir = tmp_path / "work"
    write_cycle_log(str(target), workdir, "{}")
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert not workdir.exists()


def test_the_log_line_goes_to_stderr_or_stdout_when_asked(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    """json_log "stderr" and "stdout" write the line to that stream, and no file."""
    line = cycle_log_line("pumps", _record(), WHEN)
    write_cycle_log("stderr", tmp_path, line)
    captured = capsys.readouterr()
    assert captured.err == line + "\n"
    assert captured.out == ""
    write_cycle_log("stdout", tmp_path, line)
    captured = capsys.readouterr()
    assert captured.out == line + "\n"
    assert captured.err == ""
    assert list(tmp_path.iterdir()) == []


def test_a_rejected_batch_pushes_no_realized_metric() -> None:
    """The champion's metric on a rejected (broken) batch is not the model's metric: it is not pushed."""
    rejected = _samples(_record(valid=False, decision="reject_batch", metric_name="accuracy", metric=0.12))
    assert _value(rejected, "metric", metric="accuracy") is None
    accepted = _samples(_record(metric_name="accuracy", metric=0.91))
    assert _value(accepted, "metric", metric="accuracy") == 0.91
