"""A corpus of bad input files, each run through one real monitoring cycle (`monitor-batch`).

A module-scoped backtest on two stable scenario batches makes champion v1 and the config.
Then every case writes one fixture file derived from a fresh, seeded stable batch and runs
`monitor_batch` on it: the cycle must end with a decision record (never a traceback), the
exact reason, the champion untouched, and a rejected file quarantined byte for byte and kept
out of the accepted store. Cases run in table order against one model, so the policy's
history grows from case to case; case 25 re-delivers case 23's file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.replay.backtest import run_backtest
from retrainer.replay.scenario import TARGET, ScriptedBatch, make_batch, write_scenario

pytestmark = pytest.mark.integration

ROWS = 2000
# The corpus batches are dated two days after the champion's training day: young champion, no staleness.
CASE_DAY = 2
REJECT, NONE = "reject_batch", "none"


@dataclass
class Corpus:
    root: Path
    workdir: Path
    config: Path
    cases: Path

    @property
    def quarantine(self) -> Path:
        return self.workdir / "models" / "pumps" / "quarantine"

    @property
    def accepted(self) -> Path:
        return self.workdir / "models" / "pumps" / "accepted"

    def accepted_files(self) -> list[Path]:
        return sorted(p for p in self.accepted.iterdir() if p.is_file()) if self.accepted.exists() else []


@pytest.fixture(scope="module")
def corpus(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("bad-input-corpus")
    script = (ScriptedBatch("b1", "stable", "init"), ScriptedBatch("b2", "stable", "none"))
    write_scenario(root / "batches", rows=ROWS, seed=23, script=script)
    result = run_backtest(root / "batches", TARGET, workdir=root / "work", name="pumps")
    assert [r.decision for r in result.records] == ["init", "none"]
    cases = root / "cases"
    cases.mkdir()
    return Corpus(root, result.workdir, result.workdir / "retrainer.yaml", cases)


# -- fixture builders: (fresh stable frame, rng, folder, name) -> the case file ------------------------
Builder = Callable[[pd.DataFrame, np.random.Generator, Path, str], Path]


def _csv(frame: pd.DataFrame, folder: Path, name: str, **kwargs: Any) -> Path:
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False, **kwargs)
    return path


def _rows(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> np.ndarray:
    """Exactly round(share × rows) distinct row positions, chosen at random."""
    return rng.choice(len(frame), size=round(share * len(frame)), replace=False)


def empty_file(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    path = folder / f"{name}.csv"
    path.write_bytes(b"")
    return path


def header_only(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame.head(0), folder, name)


def truncated_parquet(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def latin1_csv(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[7, "site"] = "sé"
    return _csv(frame, folder, name, encoding="latin-1")


def semicolon_csv(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame, folder, name, sep=";")


def missing_column(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame.drop(columns=["vibration_mm_s"]), folder, name)


def renamed_column(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame.rename(columns={"vibration_mm_s": "vibration"}), folder, name)


def extra_column(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame["firmware"] = rng.choice(["v1.2", "v1.3"], size=len(frame))
    return _csv(frame, folder, name)


def strings_in_numbers(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame["rpm"] = frame["rpm"].astype(object)
    frame.loc[_rows(rng, frame, 5 / len(frame)), "rpm"] = "n/a-x"
    return _csv(frame, folder, name)


def all_null_column(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame["pressure_bar"] = np.nan
    return _csv(frame, folder, name)


def mostly_null_column(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 0.6), "humidity_pct"] = np.nan
    return _csv(frame, folder, name)


def out_of_range(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 0.03), "load_pct"] = 250.0
    return _csv(frame, folder, name)


def fahrenheit(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame["temperature_c"] = (frame["temperature_c"] * 1.8 + 32).round(2)
    return _csv(frame, folder, name)


def new_common_category(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 0.4), "site"] = "mars"
    return _csv(frame, folder, name)


def categories_re_encoded(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame["site"] = frame["site"].str.upper()
    return _csv(frame, folder, name)


def placeholder_categories(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 0.4), "site"] = "unknown"
    return _csv(frame, folder, name)


def garbage_categories(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    rows = _rows(rng, frame, 0.3)
    frame.loc[rows, "site"] = [f"{value:.6f}" for value in rng.random(len(rows))]
    return _csv(frame, folder, name)


def category_trickle(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 0.03), "site"] = "mars"
    return _csv(frame, folder, name)


def duplicated_rows(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(pd.concat([frame, frame.head(100)], ignore_index=True), folder, name)


def duplicated_ids(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[1:10, "reading_id"] = frame.loc[0, "reading_id"]
    return _csv(frame, folder, name)


def infinities(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    rows = _rows(rng, frame, 3 / len(frame))
    frame.loc[rows[:2], "vibration_mm_s"] = np.inf
    frame.loc[rows[2:], "vibration_mm_s"] = -np.inf
    return _csv(frame, folder, name)


def missing_labels(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame[TARGET] = frame[TARGET].astype("float64")
    frame.loc[_rows(rng, frame, 50 / len(frame)), TARGET] = np.nan
    return _csv(frame, folder, name)


def wrong_label_type(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame[TARGET] = frame[TARGET].map({0: "no", 1: "yes"})
    return _csv(frame, folder, name)


def single_row(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame.head(1), folder, name)


def ten_times_rows(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    big = make_batch(ScriptedBatch(name, "stable", "none"), CASE_DAY, 10 * ROWS, rng)
    assert big["reading_id"].is_unique
    return _csv(big, folder, name)


def shuffled_columns(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    columns = list(frame.columns)
    order = [columns[i] for i in rng.permutation(len(columns))]
    assert order != columns
    return _csv(frame[order], folder, name)


def future_timestamps(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    frame.loc[_rows(rng, frame, 5 / len(frame)), "event_time"] = pd.Timestamp("2031-01-01")
    return _csv(frame, folder, name)


REDELIVERED = "c23_shuffled_columns"


def redelivered_batch(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    path = folder / f"{name}.csv"
    shutil.copyfile(folder / f"{REDELIVERED}.csv", path)
    return path


def binary_garbage(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    path = folder / f"{name}.parquet"
    path.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    return path


def ragged_row(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    path = _csv(frame, folder, name)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[10] = lines[10].rstrip("\n") + ",x,y,z\n"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def no_target(frame: pd.DataFrame, rng: np.random.Generator, folder: Path, name: str) -> Path:
    return _csv(frame.drop(columns=[TARGET]), folder, name)


# -- the table -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    behaviour: str
    build: Builder
    decision: str
    failure: str | None = None  # exact reason in validation_failures
    failure_prefix: str | None = None  # a validation_failures entry starts with this
    warning: str | None = None  # exact reason in validation_warnings
    warning_prefix: str | None = None  # a validation_warnings entry starts with this
    no_warnings: bool = False
    metric_none: bool = False


CASES = (
    Case("c01_empty_file", "A 0-byte CSV is rejected as unreadable.", empty_file, REJECT,
         failure="unreadable: empty file (0 bytes)"),
    Case("c02_header_only", "A CSV with a header and no rows is rejected as unreadable.", header_only, REJECT,
         failure="unreadable: no rows: the file holds a header only"),
    Case("c03_truncated_parquet", "A parquet file cut in half is rejected as unreadable.", truncated_parquet, REJECT,
         failure_prefix="unreadable: unreadable parquet file:"),
    Case("c04_latin1_csv", "A latin-1 CSV is rejected with the offending byte and its offset.", latin1_csv, REJECT,
         failure_prefix="unreadable: not UTF-8 text (byte 0xe9 at offset "),
    Case("c05_semicolon_csv", "A semicolon-separated CSV is rejected with the delimiter it uses.", semicolon_csv,
         REJECT, failure="unreadable: wrong delimiter: the header has ';' but the file reads as one column "
         "(write comma-separated CSV)"),
    Case("c06_missing_column", "A batch without a feature column is rejected naming the column.", missing_column,
         REJECT, failure="missing required column(s): vibration_mm_s"),
    Case("c07_renamed_column", "A renamed feature is rejected as missing and the new name noted as a schema change.",
         renamed_column, REJECT, failure="missing required column(s): vibration_mm_s",
         warning="schema change: unknown column(s) vibration (not used by the model)"),
    Case("c08_extra_column", "An extra column is accepted with a schema-change warning.", extra_column, NONE,
         warning="schema change: unknown column(s) firmware (not used by the model)"),
    Case("c09_strings_in_numbers", "Text in a numeric column is rejected with the count and an example.",
         strings_in_numbers, REJECT, failure="column 'rpm': 5 value(s) are not numbers (e.g. 'n/a-x')"),
    Case("c10_all_null_column", "An all-null feature fails the critical not-null expectation.", all_null_column,
         REJECT, failure_prefix="expect_column_values_to_not_be_null(pressure_bar): 100.0% unexpected"),
    Case("c11_mostly_null_column", "60 % nulls in a feature fail the critical not-null expectation.",
         mostly_null_column, REJECT,
         failure_prefix="expect_column_values_to_not_be_null(humidity_pct): 60.0% unexpected"),
    Case("c12_out_of_range", "3 % of values far out of range are accepted with a range warning.", out_of_range, NONE,
         warning_prefix="expect_column_values_to_be_between(load_pct): 3.0% unexpected"),
    Case("c13_fahrenheit", "Temperatures in °F fail the critical mean expectation.", fahrenheit, REJECT,
         failure_prefix="expect_column_mean_to_be_between(temperature_c): observed 1"),
    Case("c14_new_common_category", "A new site on 40 % of rows beside the known ones is accepted as a possible new "
         "normal, with a value-set warning naming it.", new_common_category, NONE,
         warning="expect_column_values_to_be_in_set(site): 40.0% unexpected, allowed 1.0% (e.g. 'mars')"),
    Case("c15_category_trickle", "3 % unseen categories are accepted with a value-set warning.", category_trickle,
         NONE, warning_prefix="expect_column_values_to_be_in_set(site): 3.0% unexpected"),
    Case("c16_duplicated_rows", "Rows delivered twice (ids included) are rejected as shared ids.", duplicated_rows,
         REJECT, failure_prefix="column 'reading_id': 200 rows share an id"),
    Case("c17_duplicated_ids", "Eleven rows with one id are rejected as shared ids.", duplicated_ids, REJECT,
         failure_prefix="column 'reading_id': 11 rows share an id"),
    Case("c18_infinities", "±inf in a numeric feature is rejected with the count.", infinities, REJECT,
         failure="column 'vibration_mm_s': 3 infinite value(s)"),
    Case("c19_missing_labels", "Rows without a label are accepted with a notice of how many.", missing_labels, NONE,
         warning=f"target '{TARGET}': 50 of {ROWS} rows have no label "
         "(only labelled rows are scored and trained on)"),
    Case("c20_wrong_label_type", "Labels of another type fail the critical target value-set expectation.",
         wrong_label_type, REJECT,
         failure_prefix=f"expect_column_values_to_be_in_set({TARGET}): 100.0% unexpected"),
    Case("c21_single_row", "A one-row batch where 2,000 rows are usual is rejected as a near-empty export.",
         single_row, REJECT, failure="expect_table_row_count_to_be_between: observed 1, below the minimum 30"),
    Case("c22_ten_times_rows", "A batch ten times the usual size is accepted with a row-count warning.",
         ten_times_rows, NONE, warning_prefix="expect_table_row_count_to_be_between: observed 20000 not in"),
    Case("c23_shuffled_columns", "Columns in another order are accepted with no warning at all.", shuffled_columns,
         NONE, no_warnings=True),
    Case("c24_future_timestamps", "Timestamps in the future are accepted with a notice of how many.",
         future_timestamps, NONE, warning_prefix="column 'event_time': 5 timestamp(s) in the future"),
    Case("c25_redelivered_batch", "A byte-identical copy of an accepted batch is rejected as a duplicate.",
         redelivered_batch, REJECT, failure=f"duplicate: same content as batch '{REDELIVERED}'"),
    Case("c26_binary_garbage", "Random bytes named .parquet are rejected as unreadable.", binary_garbage, REJECT,
         failure_prefix="unreadable: unreadable parquet file:"),
    Case("c27_ragged_row", "A CSV line with extra fields is rejected as malformed.", ragged_row, REJECT,
         failure_prefix="unreadable: malformed CSV:"),
    Case("c28_no_target", "A batch without its label column is accepted with a warning and no metric.", no_target,
         NONE, warning=f"expect_column_to_exist({TARGET}): failed", metric_none=True),
    Case("c29_categories_re_encoded", "Every category re-encoded (upper case) is rejected: no known value is left.",
         categories_re_encoded, REJECT,
         failure_prefix="expect_column_values_to_be_in_set(site): 100.0% unexpected, allowed 50.0%"),
    Case("c30_placeholder_categories", "'unknown' on 40 % of rows is a missing value, not a new category: rejected.",
         placeholder_categories, REJECT,
         failure="expect_column_values_to_not_be_in_set(site): 40.0% unexpected, allowed 10.0% (e.g. 'unknown')"),
    Case("c31_garbage_categories", "Hundreds of new values in a category column are rejected as not categories.",
         garbage_categories, REJECT,
         failure="expect_column_unique_value_count_to_be_between(site): observed 604, above the maximum 7"),
)


def _champion_version(workdir: Path) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    return str(client.get_model_version_by_alias("pumps", "champion").version)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(corpus: Corpus, case: Case) -> None:
    """One corpus file through one real cycle: a record with the expected decision and reason, v1 untouched."""
    from retrainer.pipeline.flows import monitor_batch

    seed = 1000 + CASES.index(case)
    rng = np.random.default_rng(seed)
    fresh = make_batch(ScriptedBatch(case.id, "stable", "none"), CASE_DAY, ROWS, rng)
    path = case.build(fresh, rng, corpus.cases, case.id)
    accepted_before = corpus.accepted_files()

    state = monitor_batch(str(corpus.config), str(path), return_state=True)
    record = state.result()
    # In the Prefect UI a rejection is a run named "Rejected" with its reasons, not one more "Completed".
    assert state.is_completed()
    assert state.name == ("Rejected" if case.decision == REJECT else "Completed"), state.name
    if case.decision == REJECT:
        assert state.message.startswith(f"pumps: batch {case.id} -> reject_batch ("), state.message

    failures, warnings = record["validation_failures"], record["validation_warnings"]
    seen = (f"decision={record['decision']!r} failures={failures!r} warnings={warnings!r} "
            f"reasons={record['reasons']!r} metric={record['metric']!r} promoted={record.get('promoted')!r} "
            f"new_champion_version={record.get('new_champion_version')!r} retrain_error={record.get('retrain_error')!r}")
    assert record["batch"] == case.id
    assert record["decision"] == case.decision, seen
    if case.failure is not None:
        assert case.failure in failures, seen
    if case.failure_prefix is not None:
        assert any(f.startswith(case.failure_prefix) for f in failures), seen
    if case.warning is not None:
        assert case.warning in warnings, seen
    if case.warning_prefix is not None:
        assert any(w.startswith(case.warning_prefix) for w in warnings), seen
    if case.no_warnings:
        assert warnings == [], seen
    if case.metric_none:
        assert record["metric"] is None, seen

    assert record["champion_version"] == "1"
    assert _champion_version(corpus.workdir) == "1"

    accepted_after = corpus.accepted_files()
    if case.decision == REJECT:
        assert record["valid"] is False
        quarantined = corpus.quarantine / path.name
        assert quarantined.read_bytes() == path.read_bytes()
        assert not any(p.name.endswith(f"__{case.id}.parquet") for p in accepted_after)
        assert accepted_after == accepted_before  # a rejected batch never reaches the training store
    else:
        assert [p for p in accepted_after if p.name.endswith(f"__{case.id}.parquet")]
        assert len(accepted_after) == len(accepted_before) + 1


def test_fast_validation_gives_the_one_pass_verdicts_and_reasons_on_every_case(corpus: Corpus) -> None:
    """Every case of the corpus that reaches the suite, validated the fast way (each expectation on the column
    it checks, in two passes: BOOLEAN_ONLY, then the failed expectations in SUMMARY) and in GE's one SUMMARY
    pass over the whole table: the same verdict, the same reasons word for word, the same pass/fail of each
    expectation and the same statistics, and the same row-level split (COMPLETE) with
    row-level quarantine on."""
    from retrainer.config import ValidationSettings, load_config
    from retrainer.core.schema import schema_from_settings
    from retrainer.data.batches import BatchReadError, read_batch
    from retrainer.state.stores import with_saved_columns
    from retrainer.validation import validate_batch

    config = with_saved_columns(load_config(corpus.config))
    schema = schema_from_settings(config.model)
    folder = corpus.root / "two-pass"
    folder.mkdir()
    judged = 0
    for number, case in enumerate(CASES):
        if case.build is redelivered_batch:
            continue  # a copy of another case: its content is judged there
        rng = np.random.default_rng(1000 + number)
        fresh = make_batch(ScriptedBatch(case.id, "stable", "none"), CASE_DAY, ROWS, rng)
        try:
            frame = read_batch(case.build(fresh, rng, folder, case.id))
        except BatchReadError:
            continue  # unreadable: rejected before any expectation runs
        for row_level in (None, ValidationSettings(row_level_quarantine=True)):
            two = validate_batch(frame, schema, config.suite_path, row_level)
            one = validate_batch(frame, schema, config.suite_path, row_level, fast=False)
            assert (two.valid, two.failures, two.warnings) == (one.valid, one.failures, one.warnings), case.id
            assert two.failing_rows == one.failing_rows, case.id
            if "results" in one.result:
                assert _verdicts(two.result) == _verdicts(one.result), case.id
                assert two.result["statistics"] == one.result["statistics"], case.id
        judged += 1
    assert judged >= 20


def _verdicts(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each expectation of a stored GE result with its pass/fail, sorted (GE orders one pass's results its own way)."""
    return sorted((r["expectation_config"]["type"],
                   json.dumps({k: v for k, v in r["expectation_config"]["kwargs"].items() if k != "batch_id"},
                              sort_keys=True, default=str),
                   r["success"]) for r in result["results"])
