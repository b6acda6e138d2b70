"""Structural checks (retrainer.validation.structure): what a dropped id or time column costs is said."""

from __future__ import annotations

from retrainer.core.schema import BatchSchema
from retrainer.validation.structure import StructureReport, check_columns

SCHEMA = BatchSchema(target="y", task="classification", numeric=("x",), categorical=(), id_column="id",
                     time_column="ts")


def test_a_missing_time_or_id_column_is_a_notice_saying_what_it_costs() -> None:
    report = StructureReport()
    check_columns(["x", "y"], SCHEMA, report)
    assert report.failures == []
    assert any("time column 'ts' is missing" in n and "wall clock" in n for n in report.notices)
    assert any("id column 'id' is missing" in n and "cannot be joined" in n for n in report.notices)


def test_a_batch_with_every_column_has_no_such_notice() -> None:
    report = StructureReport()
    check_columns(["x", "y", "id", "ts"], SCHEMA, report)
    assert report.notices == []
    assert report.failures == []
