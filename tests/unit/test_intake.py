"""The intake ledger (retrainer.intake) and its settings: what a monitor run takes on, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from retrainer.config import ConfigError, build_config, load_config, write_config
from retrainer.core.intake import LandedFile, LedgerEntry, Status, is_processed, plan_intake
from retrainer.state.ledger import AlreadyClaimed, Ledger

HASH_A = "a" * 64
HASH_B = "b" * 64


def _file(name: str, size: int | None = 10, modified: str | None = "1700000000.0") -> LandedFile:
    return LandedFile("file:///landing", name, size, modified)


def _entry(file_name: str, status: Status = "done", batch_index: int | None = 0, content_hash: str = HASH_A,
           fingerprint: str | None = None, attempts: int = 1) -> LedgerEntry:
    return LedgerEntry(model="pumps", name=file_name.rsplit(".", 1)[0], content_hash=content_hash,
                       batch_index=batch_index, status=status, file_name=file_name, fingerprint=fingerprint,
                       staged_path=f"/work/incoming/{file_name}", attempts=attempts, outcome=None)


# -- plan_intake (pure) ------------------------------------------------------------------------
def test_unfinished_claims_come_first_in_batch_index_order() -> None:
    entries = [_entry("c.csv", "processing", batch_index=7), _entry("a.csv", "done", batch_index=3),
               _entry("b.csv", "processing", batch_index=5), _entry("d.csv", "failed", batch_index=6)]
    plan = plan_intake([], entries)
    assert [e.batch_index for e in plan.resume] == [5, 7]
    assert [e.file_name for e in plan.resume] == ["b.csv", "c.csv"]


def test_files_seen_before_are_known_not_candidates() -> None:
    """A fingerprint on any ledger entry (done, failed, refused, processing) means: not read again."""
    landed = [_file("day-01.csv"), _file("day-02.csv"), _file("day-03.csv"), _file("..bad.csv"),
              _file("day-05.csv")]
    entries = [_entry("day-01.csv", "done", fingerprint=landed[0].fingerprint),
               _entry("day-03.csv", "failed", fingerprint=landed[2].fingerprint),
               _entry("..bad.csv", "refused", batch_index=None, content_hash="-", fingerprint=landed[3].fingerprint),
               _entry("day-05.csv", "processing", batch_index=4, fingerprint=landed[4].fingerprint)]
    plan = plan_intake(landed, entries)
    assert [f.file_name for f in plan.candidates] == ["day-02.csv"]
    assert [f.file_name for f in plan.known] == ["day-01.csv", "day-03.csv", "..bad.csv", "day-05.csv"]
    assert [e.file_name for e in plan.resume] == ["day-05.csv"]


def test_a_rewritten_file_is_a_candidate_again() -> None:
    """Same name, another size or stamp: the bytes must be hashed to know whether it is new."""
    old = _file("day-01.csv", size=10)
    rewritten = _file("day-01.csv", size=12)
    plan = plan_intake([rewritten], [_entry("day-01.csv", fingerprint=old.fingerprint)])
    assert plan.candidates == [rewritten]
    assert plan.known == []


def test_files_without_a_fingerprint_are_always_candidates() -> None:
    unstamped = _file("day-01.csv", modified=None)
    plan = plan_intake([unstamped], [_entry("day-01.csv", fingerprint=None)])
    assert plan.candidates == [unstamped]


def test_candidates_keep_the_listing_order() -> None:
    landed = [_file(f"day-0{i}.csv") for i in range(1, 6)]
    assert plan_intake(landed, []).candidates == landed


def test_files_still_being_written_wait_for_the_next_run() -> None:
    """A file changed within the settle time may be half written: not a candidate yet."""
    old = LandedFile("file:///landing", "day-01.csv", 10, "1000.0", 1000.0)
    new = LandedFile("file:///landing", "day-02.csv", 10, "1095.0", 1095.0)
    unstamped = LandedFile("s3://b", "day-03.csv", 10, None, None)
    plan = plan_intake([old, new, unstamped], [], now=1100.0, settle_seconds=10.0)
    assert plan.candidates == [old, unstamped]
    assert plan.unsettled == [new]
    assert plan_intake([old, new], [], now=1110.0, settle_seconds=10.0).candidates == [old, new]


def test_is_processed_matches_file_name_and_content_hash_only() -> None:
    entries = [_entry("day-01.csv", "done", content_hash=HASH_A, fingerprint="day-01.csv|10|1")]
    found = is_processed(entries, "day-01.csv", HASH_A)
    assert found is not None
    assert found.file_name == "day-01.csv"
    # Same name, other bytes: a corrected file, processed in its turn.
    assert is_processed(entries, "day-01.csv", HASH_B) is None
    # Same bytes, other name: goes to the cycle (which rejects it as a duplicate).
    assert is_processed(entries, "day-01-again.csv", HASH_A) is None
    assert is_processed([], "day-01.csv", HASH_A) is None


def test_is_processed_ignores_the_batch_name_and_fingerprint() -> None:
    entry = _entry("day-01.csv", "failed", content_hash=HASH_A, fingerprint="something else")
    assert is_processed([entry], "day-01.csv", HASH_A) == entry


# -- Ledger (SQLite) ---------------------------------------------------------------------------
@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/l.db"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger(ledger_url)
    yield opened
    opened.close()


def _claim(ledger: Ledger, file_name: str = "day-01.csv", content_hash: str = HASH_A, batch_index: int = 3,
           model: str = "pumps", size: int = 10) -> LedgerEntry:
    landed = _file(file_name, size=size)
    return ledger.claim(model, landed, file_name.rsplit(".", 1)[0], content_hash, batch_index,
                        f"/work/incoming/{content_hash[:16]}__{file_name}")


def test_a_claim_is_on_record_as_processing_with_one_attempt(ledger: Ledger) -> None:
    claimed = _claim(ledger)
    assert claimed.status == "processing"
    assert claimed.attempts == 1
    [stored] = ledger.entries("pumps")
    assert stored == claimed
    assert stored.name == "day-01"
    assert stored.batch_index == 3
    assert stored.content_hash == HASH_A
    assert stored.fingerprint == _file("day-01.csv").fingerprint
    assert stored.staged_path == f"/work/incoming/{HASH_A[:16]}__day-01.csv"
    assert stored.outcome is None


def test_the_same_name_and_bytes_cannot_be_claimed_twice(ledger: Ledger) -> None:
    _claim(ledger, batch_index=3)
    with pytest.raises(AlreadyClaimed, match="day-01.csv"):
        _claim(ledger, batch_index=4, size=99)
    [stored] = ledger.entries("pumps")
    assert stored.batch_index == 3


def test_the_same_name_with_new_bytes_is_a_new_claim(ledger: Ledger) -> None:
    _claim(ledger, content_hash=HASH_A, batch_index=3)
    _claim(ledger, content_hash=HASH_B, batch_index=4, size=12)
    entries = sorted(ledger.entries("pumps"), key=lambda e: e.batch_index or 0)
    assert [(e.file_name, e.content_hash, e.batch_index) for e in entries] == [
        ("day-01.csv", HASH_A, 3), ("day-01.csv", HASH_B, 4)]


def test_retry_counts_another_attempt_on_record(ledger: Ledger) -> None:
    claimed = _claim(ledger)
    once = ledger.retry(claimed)
    twice = ledger.retry(once)
    assert (once.attempts, twice.attempts) == (2, 3)
    [stored] = ledger.entries("pumps")
    assert stored.attempts == 3
    assert stored.status == "processing"


def test_finish_marks_the_claim_done_with_its_outcome(ledger: Ledger) -> None:
    claimed = _claim(ledger)
    other = _claim(ledger, "day-02.csv", batch_index=4)
    ledger.finish(claimed, "retrain")
    stored = {e.file_name: e for e in ledger.entries("pumps")}
    assert (stored["day-01.csv"].status, stored["day-01.csv"].outcome) == ("done", "retrain")
    assert (stored["day-02.csv"].status, stored["day-02.csv"].outcome) == ("processing", None)
    assert stored["day-02.csv"] == other


def test_fail_sets_the_claim_aside_with_the_reason(ledger: Ledger) -> None:
    claimed = _claim(ledger)
    ledger.fail(claimed, "set aside after 3 unfinished attempts")
    [stored] = ledger.entries("pumps")
    assert stored.status == "failed"
    assert stored.outcome == "set aside after 3 unfinished attempts"
    # A failed batch is no longer resumed.
    assert plan_intake([], ledger.entries("pumps")).resume == []


def test_refuse_puts_a_file_on_record_once(ledger: Ledger) -> None:
    bad = _file("..evil.csv")
    ledger.refuse("pumps", bad, "refused batch file name '..evil.csv': hidden or relative name")
    ledger.refuse("pumps", bad, "a second reason")  # does not raise
    [stored] = ledger.entries("pumps")
    assert stored.status == "refused"
    assert stored.file_name == "..evil.csv"
    assert stored.batch_index is None
    assert stored.outcome == "refused batch file name '..evil.csv': hidden or relative name"
    # The next scan knows the file and does not try it again.
    plan = plan_intake([bad], ledger.entries("pumps"))
    assert (plan.candidates, plan.known) == ([], [bad])


def test_two_ledgers_on_one_database_see_each_others_rows(ledger_url: str) -> None:
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    try:
        claimed = _claim(first)
        assert second.entries("pumps") == [claimed]
        with pytest.raises(AlreadyClaimed):
            _claim(second)
        second.finish(claimed, "none")
        assert [e.status for e in first.entries("pumps")] == ["done"]
    finally:
        first.close()
        second.close()


def test_the_ledger_survives_reopening(ledger_url: str) -> None:
    first = Ledger(ledger_url)
    claimed = _claim(first)
    first.close()
    reopened = Ledger(ledger_url)
    try:
        assert reopened.entries("pumps") == [claimed]
    finally:
        reopened.close()


def test_entries_are_per_model(ledger: Ledger) -> None:
    pumps = _claim(ledger, model="pumps")
    fans = _claim(ledger, model="fans")  # the same file and bytes for another model: its own claim
    assert ledger.entries("pumps") == [pumps]
    assert ledger.entries("fans") == [fans]
    assert ledger.entries("valves") == []
    ledger.finish(fans, "none")
    assert [e.status for e in ledger.entries("pumps")] == ["processing"]


# -- Ledger (PostgreSQL) -----------------------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_plain_landing_folder_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "deploy" / "retrainer.yaml", "model: {target: y}\nintake: {landing: ../drops}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(path).intake.landing == str((tmp_path / "drops").resolve())


@pytest.mark.parametrize("landing", ["s3://bucket/landing/pumps", "file:///srv/landing", "gs://b/p"])
def test_a_landing_uri_is_kept_as_written(tmp_path: Path, landing: str) -> None:
    config = build_config({"model": {"target": "y"}, "intake": {"landing": landing}}, tmp_path)
    assert config.intake.landing == landing


def test_intake_defaults(tmp_path: Path) -> None:
    config = build_config({"model": {"target": "y"}}, tmp_path)
    assert config.intake.landing is None
    assert config.intake.pattern == "*"
    assert config.intake.max_batches_per_run == 100
    assert config.intake.max_attempts == 5


def test_the_default_ledger_is_a_sqlite_file_in_the_workdir(tmp_path: Path) -> None:
    path = _write(tmp_path / "cfg" / "retrainer.yaml", "model: {target: y}\nstorage: {workdir: state}\n")
    config = load_config(path)
    workdir = (tmp_path / "cfg" / "state").resolve()
    assert config.intake.ledger_url is None
    assert config.ledger_url == f"sqlite:///{(workdir / 'intake.db').as_posix()}"
    assert config.ledger_url.startswith("sqlite:////")


def test_a_relative_sqlite_ledger_url_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "deploy" / "retrainer.yaml",
                  "model: {target: y}\nintake: {ledger_url: 'sqlite:///db/intake.db'}\n")
    monkeypatch.chdir(tmp_path)
    expected = f"sqlite:///{(tmp_path / 'deploy' / 'db' / 'intake.db').resolve().as_posix()}"
    assert load_config(path).ledger_url == expected


@pytest.mark.parametrize("url", ["sqlite:////var/lib/retrainer/intake.db",
                                 "postgresql://retrainer@db:5432/intake"])
def test_absolute_and_server_ledger_urls_are_kept(tmp_path: Path, url: str) -> None:
    config = build_config({"model": {"target": "y"}, "intake": {"ledger_url": url}}, tmp_path)
    assert config.ledger_url == url


def test_the_ledger_url_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_INTAKE__LEDGER_URL", "postgresql://retrainer:secret@db/intake")
    config = build_config({"model": {"target": "y"}, "intake": {"landing": "drops"}}, tmp_path)
    assert config.ledger_url == "postgresql://retrainer:secret@db/intake"
    assert config.intake.landing == str((tmp_path / "drops").resolve())


def test_the_ledger_url_is_not_written_back_to_a_file(tmp_path: Path) -> None:
    """It may carry a password: `to_yaml_dict` leaves it out, the rest of the section stays."""
    config = build_config({"model": {"target": "y"}, "intake": {
        "landing": "s3://bucket/p", "ledger_url": "postgresql://u:secret@db/intake", "max_attempts": 7}}, tmp_path)
    intake = config.to_yaml_dict()["intake"]
    assert "ledger_url" not in intake
    assert intake["landing"] == "s3://bucket/p"
    assert intake["max_attempts"] == 7
    out = tmp_path / "written.yaml"
    write_config(config, out)
    assert "secret" not in out.read_text(encoding="utf-8")
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["intake"]["landing"] == "s3://bucket/p"


@pytest.mark.parametrize(("intake", "setting"), [
    ({"max_batches_per_run": 0}, "intake.max_batches_per_run"),
    ({"max_attempts": 0}, "intake.max_attempts"),
    ({"lock_timeout_seconds": -1}, "intake.lock_timeout_seconds"),
    ({"landing_folder": "x"}, "intake.landing_folder"),
])
def test_bad_intake_settings_are_one_line_config_errors(tmp_path: Path, intake: dict[str, object],
                                                         setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"model": {"target": "y"}, "intake": intake}, tmp_path, source="r.yaml")
    assert f"r.yaml: setting '{setting}'" in str(info.value)
    assert "\n" not in str(info.value)
