"""The landing location (retrainer.data.landing): safe batch names, listing a folder or file:// URI, staging a copy."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from retrainer.core.intake import LandedFile
from retrainer.data.batches import content_hash
from retrainer.data.landing import (
    MAX_NAME_LENGTH,
    LandingError,
    UnsafeBatchName,
    checked_landed_name,
    checked_local_batch,
    ensure_inside,
    list_landed,
    safe_batch_name,
    stage,
)


def _drop(folder: Path, name: str, text: str = "x,y\n1,2\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _landed(path: Path) -> LandedFile:
    """The listing's view of one file (the only file of its folder matching its name)."""
    [landed] = list_landed(str(path.parent), path.name)
    return landed


# -- safe_batch_name ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("file_name", "batch"),
    [
        ("day-01.csv", "day-01"),
        ("2026-03-02.parquet", "2026-03-02"),
        ("pumps_week 7.pq", "pumps_week 7"),
        ("batch.v2.csv", "batch.v2"),
        ("b" * (MAX_NAME_LENGTH - 4) + ".csv", "b" * (MAX_NAME_LENGTH - 4)),
    ],
)
def test_plain_file_names_give_their_batch_name(file_name: str, batch: str) -> None:
    """An ordinary landed file name becomes the batch name without its suffix."""
    assert safe_batch_name(file_name) == batch


@pytest.mark.parametrize(
    "file_name",
    [
        "../x.csv",
        "a/b.csv",
        "/etc/x.csv",
        "..\\x.csv",
        "a\\b.csv",
        ".hidden.csv",
        "..",
        ".",
        "day\x00.csv",
        "day\n01.csv",
        "day\r.csv",
        "day\t.csv",
        "day\x1b[31m.csv",
        "day\x7f.csv",
        "x" * (MAX_NAME_LENGTH + 1),
        "y" * (MAX_NAME_LENGTH - 3) + ".csv",
    ],
)
def test_names_that_could_leave_the_project_folders_are_refused_naming_the_file(file_name: str) -> None:
    """Separators, parent references, hidden names, control characters and overlong names are refused;
    the message quotes the offending file name so a person can find it."""
    with pytest.raises(UnsafeBatchName) as info:
        safe_batch_name(file_name)
    message = str(info.value)
    assert repr(file_name) in message
    assert "refused" in message


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(UnsafeBatchName, match="empty"):
        safe_batch_name("")


def test_unsafe_batch_name_is_a_value_error() -> None:
    """Callers that guard against bad values in general catch it too."""
    assert issubclass(UnsafeBatchName, ValueError)


# -- ensure_inside -----------------------------------------------------------------------------
def test_ensure_inside_returns_paths_inside_the_folder_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    inside = folder / "abc__day-01.csv"
    assert ensure_inside(folder, inside) == inside
    # Not created yet, nested: still inside.
    assert ensure_inside(folder, folder / "sub" / "x.csv") == folder / "sub" / "x.csv"


@pytest.mark.parametrize("relative", ["../x.csv", "../../etc/passwd", "a/../../x.csv"])
def test_ensure_inside_refuses_paths_that_climb_out(tmp_path: Path, relative: str) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    with pytest.raises(UnsafeBatchName, match="outside"):
        ensure_inside(folder, folder / relative)


def test_ensure_inside_refuses_an_absolute_path_elsewhere(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    with pytest.raises(UnsafeBatchName):
        ensure_inside(folder, tmp_path / "incoming-other" / "x.csv")


def test_ensure_inside_refuses_an_escape_through_a_symlink(tmp_path: Path) -> None:
    """A link inside the folder pointing elsewhere does not make its target 'inside'."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeBatchName):
        ensure_inside(folder, folder / "link" / "x.csv")


# -- list_landed -------------------------------------------------------------------------------
@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    for name in ["day-03.csv", "day-01.csv", "day-02.parquet", "day-04.pq", "notes.txt", "day-05.json",
                 "README", "day-06.csv.tmp"]:
        _drop(folder, name)
    _drop(folder / "archive", "day-00.csv")
    (folder / "looks-like.csv").mkdir()
    return folder


def test_only_batch_files_directly_in_the_folder_are_listed_in_name_order(landing: Path) -> None:
    """.csv/.parquet/.pq files at the top level, sorted; other files and subfolders are not batches."""
    names = [f.file_name for f in list_landed(str(landing))]
    assert names == ["day-01.csv", "day-02.parquet", "day-03.csv", "day-04.pq"]


def test_a_file_uri_lists_the_same_files_with_file_uris(landing: Path) -> None:
    by_path = list_landed(str(landing))
    by_uri = list_landed(landing.as_uri())
    assert [f.file_name for f in by_uri] == [f.file_name for f in by_path]
    assert [f.size for f in by_uri] == [f.size for f in by_path]
    for landed in by_uri:
        assert landed.uri.startswith("file://")
        assert landed.uri.endswith("/" + landed.file_name)


def test_the_pattern_filters_file_names(landing: Path) -> None:
    assert [f.file_name for f in list_landed(str(landing), "day-0[13]*")] == ["day-01.csv", "day-03.csv"]
    assert [f.file_name for f in list_landed(str(landing), "*.csv")] == ["day-01.csv", "day-03.csv"]
    # The pattern cannot make a non-batch file a batch.
    assert list_landed(str(landing), "*.txt") == []


def test_upper_case_suffixes_are_batches_too(tmp_path: Path) -> None:
    _drop(tmp_path, "DAY-01.CSV")
    assert [f.file_name for f in list_landed(str(tmp_path))] == ["DAY-01.CSV"]


def test_an_empty_folder_lists_nothing(tmp_path: Path) -> None:
    assert list_landed(str(tmp_path)) == []


@pytest.mark.parametrize("as_uri", [False, True])
def test_a_missing_folder_is_a_one_line_landing_error(tmp_path: Path, as_uri: bool) -> None:
    missing = tmp_path / "no-such-landing"
    location = missing.as_uri() if as_uri else str(missing)
    with pytest.raises(LandingError) as info:
        list_landed(location)
    message = str(info.value)
    assert "\n" not in message
    assert location in message
    assert "not found" in message


def test_an_unknown_protocol_is_a_one_line_landing_error() -> None:
    with pytest.raises(LandingError) as info:
        list_landed("nosuchprotocol://bucket/prefix")
    assert "\n" not in str(info.value)
    assert "nosuchprotocol://bucket/prefix" in str(info.value)


def test_local_files_have_a_fingerprint_of_name_size_and_stamp(tmp_path: Path) -> None:
    path = _drop(tmp_path, "day-01.csv", "x,y\n1,2\n")
    landed = _landed(path)
    assert landed.size == path.stat().st_size
    assert landed.modified is not None
    assert landed.fingerprint is not None
    assert landed.fingerprint.startswith("day-01.csv|")
    # Listing again without touching the file: the same fingerprint (the file is known, unread).
    assert _landed(path).fingerprint == landed.fingerprint


def test_the_fingerprint_changes_when_the_file_is_rewritten_with_another_size(tmp_path: Path) -> None:
    path = _drop(tmp_path, "day-01.csv", "x,y\n1,2\n")
    before = _landed(path)
    path.write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    after = _landed(path)
    assert after.size != before.size
    assert after.fingerprint != before.fingerprint


def test_the_fingerprint_changes_when_only_the_stamp_changes(tmp_path: Path) -> None:
    path = _drop(tmp_path, "day-01.csv")
    before = _landed(path)
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 60))
    assert _landed(path).fingerprint != before.fingerprint


def test_without_size_or_stamp_there_is_no_fingerprint() -> None:
    """A store that gives no size or stamp cannot say 'unchanged': the file must be read."""
    assert LandedFile("s3://b/x.csv", "x.csv", None, "2026-01-01").fingerprint is None
    assert LandedFile("s3://b/x.csv", "x.csv", 10, None).fingerprint is None


# -- stage -------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_uri", [False, True])
def test_stage_copies_the_bytes_exactly_and_returns_their_sha256(tmp_path: Path, as_uri: bool) -> None:
    """Larger than one read block, so the hash covers every block; no .part file stays behind."""
    payload = os.urandom((1 << 20) * 2 + 12345)
    source = tmp_path / "landing" / "day-01.csv"
    source.parent.mkdir()
    source.write_bytes(payload)
    location = source.parent.as_uri() if as_uri else str(source.parent)
    [landed] = list_landed(location)
    target = tmp_path / "work" / "incoming" / "copy.csv"  # its folder does not exist yet
    digest = stage(landed, target)
    assert target.read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest()
    assert digest == content_hash(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.csv"]
    assert source.read_bytes() == payload  # the landed file is left alone


def test_stage_replaces_an_earlier_copy(tmp_path: Path) -> None:
    source = _drop(tmp_path / "landing", "day-01.csv", "new,bytes\n")
    target = tmp_path / "incoming" / "copy.csv"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    digest = stage(_landed(source), target)
    assert target.read_text(encoding="utf-8") == "new,bytes\n"
    assert digest == content_hash(target)


def test_staging_a_file_that_vanished_is_a_landing_error_and_leaves_nothing(tmp_path: Path) -> None:
    source = _drop(tmp_path / "landing", "day-01.csv")
    landed = _landed(source)
    source.unlink()
    target = tmp_path / "incoming" / "copy.csv"
    with pytest.raises(LandingError) as info:
        stage(landed, target)
    assert "day-01.csv" in str(info.value)
    assert "\n" not in str(info.value)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("file_name", ["day 01.csv", "day#01.csv", "day[01].csv", "day%2001.csv", "jour-é.csv"])
def test_every_listed_file_with_a_safe_name_can_be_staged(tmp_path: Path, file_name: str) -> None:
    """A name `safe_batch_name` accepts is a batch: its listed URI must read back the very file.
    (Characters that mean something in URLs or to fsspec, like '#', '[]' or '%20', are plain here.)"""
    safe_batch_name(file_name)  # accepted as a batch name
    source = _drop(tmp_path / "landing", file_name, "x,y\n1,2\n")
    for location in (str(source.parent), source.parent.as_uri()):
        [landed] = list_landed(location)
        assert landed.file_name == file_name
        target = tmp_path / "incoming" / "copy.csv"
        assert stage(landed, target) == content_hash(source)
        assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("file_name", ["day::01.csv", "day\u202e01.csv", "day\x8501.csv"])
def test_names_fsspec_or_a_terminal_would_misread_are_refused(file_name: str) -> None:
    """'::' chains stores in fsspec; format and C1 control characters hide what a name says."""
    with pytest.raises(UnsafeBatchName):
        safe_batch_name(file_name)


# -- symbolic links ------------------------------------------------------------------------------
def test_a_link_in_the_landing_folder_is_listed_and_refused_by_name(tmp_path: Path) -> None:
    """A link (to a file outside) is listed, so that it is refused on record, never read."""
    decoy = _drop(tmp_path / "outside", "precious.csv")
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "b.csv").symlink_to(decoy)
    _drop(tmp_path / "landing", "a.csv")
    listed = {f.file_name: f for f in list_landed(str(tmp_path / "landing"))}
    assert sorted(listed) == ["a.csv", "b.csv"]
    assert listed["b.csv"].link
    assert not listed["a.csv"].link
    assert checked_landed_name(listed["a.csv"]) == "a"
    with pytest.raises(UnsafeBatchName, match="refused batch 'b.csv': a symbolic link"):
        checked_landed_name(listed["b.csv"])


def test_a_file_swapped_for_a_link_after_listing_is_not_read_through_it(tmp_path: Path) -> None:
    decoy = _drop(tmp_path / "outside", "precious.csv", "secret,data\n1,2\n")
    path = _drop(tmp_path / "landing", "a.csv")
    landed = _landed(path)
    path.unlink()
    path.symlink_to(decoy)
    with pytest.raises(LandingError, match="became a symbolic link"):
        stage(landed, tmp_path / "work" / "a.csv")
    assert not (tmp_path / "work" / "a.csv").exists()


def test_run_takes_a_regular_file_and_refuses_a_link_or_an_unsafe_name(tmp_path: Path) -> None:
    regular = _drop(tmp_path, "day-1.csv")
    assert checked_local_batch(regular) == "day-1"
    (tmp_path / "day-2.csv").symlink_to(regular)
    with pytest.raises(UnsafeBatchName, match="a symbolic link"):
        checked_local_batch(tmp_path / "day-2.csv")
    with pytest.raises(UnsafeBatchName, match="control characters"):
        checked_local_batch(tmp_path / "day\n3.csv")


def test_removing_a_rejected_batch_never_deletes_through_a_link(tmp_path: Path) -> None:
    from retrainer.data.quarantine import remove_landed

    decoy = _drop(tmp_path / "outside", "precious.csv")
    quarantined = _drop(tmp_path / "quarantine", "b.csv")
    link = tmp_path / "landing" / "b.csv"
    link.parent.mkdir()
    link.symlink_to(decoy)
    remove_landed(link, quarantined)
    assert decoy.is_file()
    assert link.is_symlink()
