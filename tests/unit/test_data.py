"""Batches on disk (retrainer.data): reading with one-line reasons, the accepted store, quarantine, journal."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from retrainer.core.records import BatchRecord, GateCheckRecord, GateRecord, RetrainOutcome
from retrainer.data.batches import BatchReadError, batch_name, list_batch_files, read_batch
from retrainer.data.quarantine import quarantine_batch
from retrainer.state.journal import append_record, read_journal, update_records
from retrainer.state.stores import AcceptedStore


def _read_error(path: Path) -> str:
    with pytest.raises(BatchReadError) as info:
        read_batch(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def _frame(rows: int = 20, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"x": [float(i + offset) for i in range(rows)], "color": ["red", "blue"] * (rows // 2), "y": [0, 1] * (rows // 2)}
    )


def test_good_csv_and_parquet_read_as_frames(tmp_path: Path) -> None:
    """Well-formed CSV and parquet batches read back with their rows and columns."""
    frame = _frame()
    frame.to_csv(tmp_path / "b1.csv", index=False)
    frame.to_parquet(tmp_path / "b2.parquet", index=False)
    pd.testing.assert_frame_equal(read_batch(tmp_path / "b1.csv"), frame)
    pd.testing.assert_frame_equal(read_batch(tmp_path / "b2.parquet"), frame)


def test_zero_byte_file_is_refused_as_empty(tmp_path: Path) -> None:
    """A 0-byte batch file is refused as an empty file."""
    path = tmp_path / "b.csv"
    path.write_bytes(b"")
    assert _read_error(path) == "empty file (0 bytes)"


def test_zero_byte_parquet_is_refused_as_empty(tmp_path: Path) -> None:
    """A 0-byte parquet file is refused as an empty file too."""
    path = tmp_path / "b.parquet"
    path.write_bytes(b"")
    assert _read_error(path) == "empty file (0 bytes)"


def test_header_only_csv_is_refused_for_having_no_rows(tmp_path: Path) -> None:
    """A CSV with a header line and no data rows is refused as header-only."""
    path = tmp_path / "b.csv"
    path.write_text("x,color,y\n", encoding="utf-8")
    assert _read_error(path) == "no rows: the file holds a header only"


def test_blank_csv_is_refused_for_having_no_header(tmp_path: Path) -> None:
    """A CSV holding only blank lines is refused as having no columns."""
    path = tmp_path / "b.csv"
    path.write_text("\n\n", encoding="utf-8")
    assert _read_error(path) == "no columns: the file has no header line"


def test_non_utf8_csv_is_refused_naming_the_bad_byte(tmp_path: Path) -> None:
    """A Latin-1 CSV is refused as not UTF-8, naming the offending byte."""
    path = tmp_path / "b.csv"
    path.write_bytes("name,y\ncaf\xe9,1\n".encode("latin-1"))
    assert _read_error(path).startswith("not UTF-8 text (byte 0xe9 at offset ")


def test_non_utf8_offset_is_the_position_in_the_file(tmp_path: Path) -> None:
    """The offset in the not-UTF-8 reason points at the bad byte's position in the file."""
    path = tmp_path / "b.csv"
    data = "name,y\ncaf\xe9,1\n".encode("latin-1")
    path.write_bytes(data)
    assert _read_error(path) == (
        f"not UTF-8 text (byte 0xe9 at offset {data.index(0xE9)}); save the file as UTF-8"
    )


def test_truncated_parquet_is_refused_as_unreadable(tmp_path: Path) -> None:
    """A parquet file cut in half is refused as an unreadable parquet file, not a traceback."""
    whole = tmp_path / "whole.parquet"
    _frame(200).to_parquet(whole, index=False)
    data = whole.read_bytes()
    path = tmp_path / "b.parquet"
    path.write_bytes(data[: len(data) // 2])
    message = _read_error(path)
    assert message.startswith("unreadable parquet file: ")
    assert len(message) > len("unreadable parquet file: ")


def test_csv_renamed_to_parquet_is_refused_as_unreadable(tmp_path: Path) -> None:
    """A text file with a parquet suffix is refused as an unreadable parquet file."""
    path = tmp_path / "b.pq"
    path.write_text("x,y\n1,2\n", encoding="utf-8")
    assert _read_error(path).startswith("unreadable pq file: ")


def test_unsupported_suffix_is_refused_naming_it(tmp_path: Path) -> None:
    """A batch with a suffix other than CSV or parquet is refused, naming the suffix."""
    path = tmp_path / "b.xlsx"
    path.write_bytes(b"not really a spreadsheet")
    assert _read_error(path) == "unsupported file type '.xlsx' (use .csv or .parquet)"


def test_missing_file_is_refused_as_unopenable(tmp_path: Path) -> None:
    """A batch path that does not exist is refused with the system's reason."""
    assert _read_error(tmp_path / "absent.csv") == "cannot open file (No such file or directory)"


def test_batch_files_are_listed_in_file_name_order(tmp_path: Path) -> None:
    """Only CSV and parquet files are batches, listed in file-name order."""
    for name in ["b10.csv", "b02.parquet", "b01.CSV", "notes.txt", "b03.pq"]:
        (tmp_path / name).write_text("x\n1\n", encoding="utf-8")
    (tmp_path / "sub.csv").mkdir()
    assert [p.name for p in list_batch_files(tmp_path)] == ["b01.CSV", "b02.parquet", "b03.pq", "b10.csv"]
    assert batch_name(tmp_path / "b02.parquet") == "b02"


def test_listing_a_missing_folder_is_a_batch_read_error(tmp_path: Path) -> None:
    """Listing batches of a folder that does not exist gives a one-line reason."""
    with pytest.raises(BatchReadError, match="not a folder of batch files"):
        list_batch_files(tmp_path / "nope")


def test_accepted_store_loads_batches_by_inclusive_index_range(tmp_path: Path) -> None:
    """Accepted batches come back concatenated in index order for an inclusive index range."""
    store = AcceptedStore(tmp_path / "accepted")
    frames = {i: _frame(4, offset=10 * i) for i in (1, 2, 3, 5)}
    for i in (5, 1, 3, 2):  # added out of order
        store.add(i, f"batch{i:02d}", frames[i])
    assert store.indices() == [1, 2, 3, 5]
    window = store.load(2, 5)
    pd.testing.assert_frame_equal(window, pd.concat([frames[2], frames[3], frames[5]], ignore_index=True))
    pd.testing.assert_frame_equal(store.load(3, 3), frames[3])


def test_accepted_store_with_no_batch_in_range_loads_an_empty_frame(tmp_path: Path) -> None:
    """Loading an index range with no accepted batch gives an empty frame."""
    store = AcceptedStore(tmp_path / "accepted")
    store.add(1, "b1", _frame(4))
    assert store.load(2, 9).empty
    assert AcceptedStore(tmp_path / "never-created").indices() == []


def test_quarantine_copies_the_batch_unchanged_beside_its_result_and_summary(tmp_path: Path) -> None:
    """A rejected batch is copied byte for byte into quarantine with its validation JSON and a summary."""
    source = tmp_path / "incoming" / "b7.csv"
    source.parent.mkdir()
    raw = "x;y\r\n1,5;caf\u00e9\r\n".encode("utf-8") + b"\x00\xff trailing junk"
    source.write_bytes(raw)
    result = {"success": False, "failures": ["x missing"], "path": tmp_path}
    folder = tmp_path / "quarantine"
    copied = quarantine_batch(source, "007", folder, result, "1 critical failure: x missing")
    assert copied == folder / "007.csv"
    assert copied.read_bytes() == raw
    assert source.read_bytes() == raw
    assert json.loads((folder / "007.validation.json").read_text(encoding="utf-8")) == {
        "success": False, "failures": ["x missing"], "path": str(tmp_path)
    }
    assert (folder / "007.summary.txt").read_text(encoding="utf-8") == "1 critical failure: x missing\n"


GATE = GateRecord(passed=True, metric_name="accuracy", champion_metric=0.7, challenger_metric=0.8, improvement=0.1,
                  ci_low=0.01, ci_high=0.2, churn=0.1, holdout_rows=300,
                  checks=[GateCheckRecord(name="improvement", passed=True, detail="+0.1")])


def test_journal_round_trips_records_in_order(tmp_path: Path) -> None:
    """Records appended to the journal read back equal and in order."""
    journal = tmp_path / "models" / "m" / "timeline.jsonl"
    records = [
        BatchRecord(batch="001", rows=100, valid=True, decision="init", batch_index=0),
        BatchRecord(batch="002", rows=0, valid=False, decision="reject_batch",
                    validation_failures=["empty file (0 bytes)"], batch_index=1),
        BatchRecord(batch="003", rows=500, valid=True, decision="retrain", drift_share=0.4, dataset_drift=True,
                    drifted_features=["x1"], metric_name="accuracy", metric=0.81, reasons=["drift"],
                    promoted=True, new_champion_version="2", gate=GATE,
                    stage_seconds={"validate": 0.5}, batch_index=2),
    ]
    for record in records:
        append_record(record, journal)
    assert read_journal(journal) == records
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 3


def test_a_figure_the_gate_could_not_compute_reads_back_as_null(tmp_path: Path) -> None:
    """A NaN interval (too few holdout rows) is stored as null, and the journal still reads."""
    journal = tmp_path / "timeline.jsonl"
    gate = GATE.model_copy(update={"passed": False, "ci_low": float("nan"), "ci_high": float("nan")})
    append_record(BatchRecord(batch="b", rows=10, valid=True, decision="retrain", gate=gate), journal)
    [record] = read_journal(journal)
    assert record.gate is not None
    assert (record.gate.ci_low, record.gate.ci_high, record.gate.passed) == (None, None, False)
    assert '"ci_low":null' in journal.read_text(encoding="utf-8")


def test_a_retrain_written_back_into_its_record_keeps_the_gate_typed(tmp_path: Path) -> None:
    """The event-triggered retrain's outcome (a flow's plain dict) fills the cycle's record as typed fields."""
    journal = tmp_path / "timeline.jsonl"
    append_record(BatchRecord(batch="b", rows=10, valid=True, decision="retrain", batch_index=3), journal)
    outcome = RetrainOutcome(challenger_version="2", promoted=True, new_champion_version="2", gate=GATE).to_dict()
    [updated] = update_records(journal, {3: RetrainOutcome.from_dict(outcome).record_fields()})
    assert updated.gate == GATE
    assert read_journal(journal)[0].gate == GATE
    assert read_journal(journal)[0].promoted


def test_missing_journal_reads_as_no_history(tmp_path: Path) -> None:
    """A model with no journal yet has an empty history."""
    assert read_journal(tmp_path / "timeline.jsonl") == []


def test_a_second_rejection_under_the_same_name_does_not_overwrite_the_first(tmp_path: Path) -> None:
    """Two rejected batches named alike are both kept, with their own results."""
    from retrainer.data.quarantine import quarantine_batch

    folder = tmp_path / "quarantine"
    first, second = tmp_path / "a" / "day.csv", tmp_path / "b" / "day.csv"
    for path, text in ((first, "x\n1\n"), (second, "x\n2\n")):
        path.parent.mkdir()
        path.write_text(text)
    kept_first = quarantine_batch(first, "day", folder, {"n": 1}, "first")
    kept_second = quarantine_batch(second, "day", folder, {"n": 2}, "second")
    assert kept_first.read_text() == "x\n1\n"
    assert kept_second.read_text() == "x\n2\n"
    assert kept_second.name == "day.2.csv"
    assert (folder / "day.validation.json").read_text() != (folder / "day.2.validation.json").read_text()


def test_remove_landed_takes_the_file_out_only_once_its_copy_exists(tmp_path: Path) -> None:
    """A rejected batch leaves its landing place only when the quarantine copy is there."""
    from retrainer.data.quarantine import remove_landed

    source = tmp_path / "landing.csv"
    source.write_text("x\n1\n")
    remove_landed(source, tmp_path / "missing-copy.csv")
    assert source.exists()
    copy = tmp_path / "copy.csv"
    copy.write_text("x\n1\n")
    remove_landed(source, copy)
    assert not source.exists()
    assert copy.exists()


def test_one_column_csv_with_a_pipe_in_its_header_is_not_a_wrong_delimiter(tmp_path: Path) -> None:
    """A legitimate single-column file whose header contains '|' reads normally."""
    path = tmp_path / "b.csv"
    path.write_text("score|raw\n0.5\n0.7\n")
    assert list(read_batch(path).columns) == ["score|raw"]


def test_rows_get_unique_labels_whatever_index_a_parquet_file_stored(tmp_path: Path) -> None:
    """A parquet file with a repeated stored index reads with row labels 0..n-1."""
    path = tmp_path / "b.parquet"
    pd.DataFrame({"x": [1, 2, 3]}, index=[7, 7, 7]).to_parquet(path)
    assert list(read_batch(path).index) == [0, 1, 2]


# --- journal updates -------------------------------------------------------------------------

def test_updating_earlier_records_keeps_lines_appended_since_they_were_read(tmp_path: Path) -> None:
    """Late labels rewrite earlier records under the journal's lock: a cycle's line written meanwhile is kept."""
    from retrainer.core.records import BatchRecord
    from retrainer.state.journal import append_record, read_journal, update_records

    journal = tmp_path / "timeline.jsonl"
    for index in range(3):
        append_record(BatchRecord(batch=f"b{index}", rows=10, valid=True, decision="none", batch_index=index), journal)
    stale_view = read_journal(journal)
    append_record(BatchRecord(batch="b3", rows=10, valid=True, decision="none", batch_index=3), journal)
    changed = update_records(journal, {stale_view[1].batch_index: {"metric": 0.5, "labelled_rows": 10}})
    after = read_journal(journal)
    assert [r.batch for r in after] == ["b0", "b1", "b2", "b3"]
    assert after[1].metric == 0.5
    assert after[1].labelled_rows == 10
    assert [r.batch for r in changed] == ["b1"]
    assert not journal.with_name(journal.name + ".tmp").exists()
