"""The intake ledger on PostgreSQL, as workers on several machines share it."""

from __future__ import annotations

import pytest

from retrainer.core.intake import LandedFile, LedgerEntry
from retrainer.state.ledger import AlreadyClaimed, Ledger

pytestmark = pytest.mark.integration

HASH_A, HASH_B = "a" * 64, "b" * 64


def _file(name: str, size: int = 10) -> LandedFile:
    return LandedFile("file:///landing", name, size, "1700000000.0")


def _claim(ledger: Ledger, content_hash: str = HASH_A, batch_index: int = 3, size: int = 10) -> LedgerEntry:
    return ledger.claim("pumps", _file("day-01.csv", size), "day-01", content_hash, batch_index,
                        f"/work/incoming/{content_hash[:16]}__day-01.csv")


def test_claims_on_postgresql_are_taken_once(postgres_database: str) -> None:
    """The ledger shared by workers on several machines: a second claim of the same bytes is refused."""
    first, second = Ledger(postgres_database), Ledger(postgres_database)
    try:
        claimed = _claim(first)
        with pytest.raises(AlreadyClaimed):
            _claim(second, batch_index=4)
        _claim(second, content_hash=HASH_B, batch_index=4, size=12)
        second.finish(claimed, "none")
        stored = {e.content_hash: e for e in first.entries("pumps")}
        assert (stored[HASH_A].status, stored[HASH_A].batch_index) == ("done", 3)
        assert (stored[HASH_B].status, stored[HASH_B].attempts) == ("processing", 1)
    finally:
        first.close()
        second.close()


def test_a_landed_file_with_a_very_long_name_is_refused_on_record_on_postgresql(postgres_database: str) -> None:
    """File systems allow 255-character names (object stores longer ones); safe_batch_name refuses them,
    and the refusal must reach the ledger instead of failing the monitor run on every scan."""
    long_name = "x" * 251 + ".csv"
    ledger = Ledger(postgres_database)
    try:
        ledger.refuse("pumps", _file(long_name), f"refused batch file name {long_name!r}: empty or longer than 200")
        assert [(e.file_name, e.status) for e in ledger.entries("pumps")] == [(long_name, "refused")]
    finally:
        ledger.close()
