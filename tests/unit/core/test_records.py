"""The decision journal (retrainer.core.records): labelled rows since the champion's training window."""

from __future__ import annotations

from retrainer.core.records import BatchRecord, DecisionName, labelled_since_champion


def _record(batch_index: int, decision: DecisionName, labelled_rows: int,
            new_champion_version: str | None = None) -> BatchRecord:
    return BatchRecord(batch=f"batch_{batch_index:03d}", rows=labelled_rows + 10, valid=decision != "reject_batch",
                       decision=decision, batch_index=batch_index, labelled_rows=labelled_rows,
                       new_champion_version=new_champion_version)


def _journal() -> list[BatchRecord]:
    """v1 trained on batches 0-1, 2-3 accepted, 4 rejected, v2 made by the retrain at 5, then 6 and 7 accepted."""
    return [
        _record(0, "init", 100, "1"),
        _record(1, "init", 100, "1"),
        _record(2, "none", 30),
        _record(3, "none", 40),
        _record(4, "reject_batch", 500),
        _record(5, "retrain", 60, "2"),
        _record(6, "none", 70),
        _record(7, "none", 80),
    ]


def test_counts_labelled_rows_after_the_cycle_that_made_the_champion() -> None:
    """Rows accepted after the champion's own retrain count; that batch and earlier ones do not."""
    assert labelled_since_champion(_journal(), "2") == 70 + 80


def test_the_initial_champion_counts_from_after_its_initial_batches() -> None:
    """For the first champion, every accepted batch after the init batches counts, the retrain's batch included."""
    records = _journal()[:6]  # up to the retrain at 5
    assert labelled_since_champion(records, "1") == 30 + 40 + 60


def test_rejected_batches_do_not_count() -> None:
    """Labels of a rejected batch were never accepted, so they are not new training data."""
    records = _journal()[:5]  # init 0-1, 2, 3, rejected 4
    assert labelled_since_champion(records, "1") == 30 + 40


def test_a_retrain_that_did_not_promote_still_counts_its_labels() -> None:
    """A retrain whose challenger lost keeps the champion, and the batch's labels count towards the next one."""
    records = _journal() + [_record(8, "retrain", 90), _record(9, "none", 10)]
    assert labelled_since_champion(records, "2") == 70 + 80 + 90 + 10


def test_nothing_since_the_champion_counts_zero() -> None:
    """Right after a champion was made there are no new labelled rows."""
    assert labelled_since_champion(_journal()[:6], "2") == 0
    assert labelled_since_champion(_journal()[:2], "1") == 0


def test_a_champion_unknown_to_the_journal_counts_from_the_latest_retrain() -> None:
    """A champion set by hand to a version the journal never made counts from the latest retrain or init."""
    records = _journal() + [_record(8, "retrain", 90), _record(9, "none", 10)]
    assert labelled_since_champion(records, "99") == 10
    assert labelled_since_champion(records, None) == 10
    # with only the initial champion, from after the init batches
    assert labelled_since_champion(_journal()[:4], "99") == 30 + 40


def test_an_empty_journal_has_no_labelled_rows() -> None:
    """Before any cycle there is nothing to count."""
    assert labelled_since_champion([], "1") == 0
    assert labelled_since_champion([], None) == 0


def test_a_journal_without_init_or_retrain_counts_every_accepted_batch() -> None:
    """With no record of how the champion was made, every accepted batch's labels count."""
    records = [_record(0, "none", 5), _record(1, "reject_batch", 50), _record(2, "none", 7)]
    assert labelled_since_champion(records, "3") == 12


# --- late measurements -----------------------------------------------------------------------

from retrainer.core.records import late_measurement  # noqa: E402


def _served(index: int, metric: float | None, late: bool = False, decision: str = "none",
            champion: str = "2") -> BatchRecord:
    return BatchRecord(batch=f"b{index}", rows=100, valid=True, decision=decision, batch_index=index,
                       champion_version=champion, metric=metric,
                       late_labels_at="2026-03-05T00:00:00+00:00" if late else None)


def test_the_newest_late_measurement_of_the_champion_is_used() -> None:
    """With no labels now, the newest late-labelled measurement of the serving champion stands in."""
    made = BatchRecord(batch="b1", rows=100, valid=True, decision="retrain", batch_index=1, new_champion_version="2")
    records = [made, _served(2, 0.9, late=True), _served(3, 0.6, late=True), _served(4, None)]
    found = late_measurement(records, "2")
    assert found is not None
    assert found.batch == "b3"


def test_a_newer_on_time_measurement_supersedes_a_late_one() -> None:
    """A batch measured on time after the late one is fresher evidence: no late measurement is used."""
    records = [_served(2, 0.6, late=True), _served(3, 0.9)]
    assert late_measurement(records, "2") is None


def test_measurements_before_the_last_retrain_were_already_acted_on() -> None:
    """A late measurement older than the last retrain (even one whose challenger was refused) is not used again."""
    refused = BatchRecord(batch="b4", rows=100, valid=True, decision="retrain", batch_index=4, champion_version="2")
    records = [_served(3, 0.6, late=True), refused, _served(5, None)]
    assert late_measurement(records, "2") is None


def test_measurements_of_another_champion_do_not_count() -> None:
    """What an earlier champion scored says nothing about the one serving now."""
    assert late_measurement([_served(3, 0.6, late=True, champion="1")], "2") is None


def test_a_past_cycle_remembers_which_outgrown_rules_fired() -> None:
    """The policy's memory of a cycle is read from its recorded checks by the rule names the policy writes."""
    from retrainer.core.decision import Rule, SignalCheck

    record = BatchRecord(batch="b7", rows=10, valid=True, decision="retrain", batch_index=7, champion_version="3",
                         window_start=5, shifted=False, dataset_drift=True,
                         signals=[SignalCheck(Rule.OUTGROWN_REFERENCE, "relative_metric_gain", 0.2, 0.1, True),
                                  SignalCheck(Rule.OUTGROWN_PERSISTENCE, "outgrown_batches_in_a_row", 1.0, 2.0, False)])
    past = record.past_cycle()
    assert (past.batch_index, past.decision, past.window_start, past.champion_version) == (7, "retrain", 5, "3")
    assert past.outgrown
    assert not past.outgrown_due
    assert past.dataset_drift is False  # `shifted`, where recorded, is what the hysteresis counts
    # Read back from JSON, the rule is a plain string and still matches.
    again = BatchRecord.model_validate_json(record.model_dump_json())
    assert again.past_cycle() == past


def test_a_batch_is_a_duplicate_of_an_earlier_batch_used_with_the_same_content() -> None:
    from retrainer.core.records import used_copy_of

    records = [BatchRecord(batch="mon", rows=1, valid=False, decision="reject_batch", content_hash="h1"),
               BatchRecord(batch="tue", rows=1, valid=True, decision="none", content_hash="h2")]
    assert used_copy_of(records, "h2") == "tue"
    assert used_copy_of(records, "h1") is None  # rejected: it may come back after a suite fix
    assert used_copy_of(records, None) is None
