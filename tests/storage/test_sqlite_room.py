"""On a disk low on space, each SQLite write empties the write-ahead log, so the log cannot
take the last of the disk; with room, the log grows to its checkpoint as usual. (The full-disk
fault test in tests/faults runs the whole path on a disk that really fills up.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.query import RetainedTable
from watchkeeper.storage import migrate
from watchkeeper.storage.engine import create_store_engine
from watchkeeper.storage.sql_store import SqlStore

NO_DISK_IS_THAT_BIG = 1 << 62


def sqlite_store(path: Path, low_disk_bytes: int) -> SqlStore:
    store = SqlStore(create_store_engine(f"sqlite:///{path}"), low_disk_bytes=low_disk_bytes)
    migrate.upgrade(store.engine)
    return store


def write_batches(store: SqlStore, count: int) -> None:
    for number in range(count):
        store.write(batch_of([span(T0 + number + i / 100, user_id=f"u{i}") for i in range(50)]))


def test_a_low_disk_keeps_the_write_ahead_log_empty_after_each_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "low.db"
    store = sqlite_store(database, low_disk_bytes=NO_DISK_IS_THAT_BIG)
    try:
        with caplog.at_level(logging.INFO, logger="watchkeeper"):
            write_batches(store, 5)
        assert database.with_name("low.db-wal").stat().st_size == 0
        assert store.count(RetainedTable.SPANS) == 250
    finally:
        store.close()
    warnings = [record.getMessage() for record in caplog.records if "MiB free" in record.msg]
    assert len(warnings) == 1, "told once, when the disk was first found low"
    assert "empties its write-ahead log after every write" in warnings[0]


def test_a_disk_with_room_lets_the_write_ahead_log_grow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "roomy.db"
    store = sqlite_store(database, low_disk_bytes=0)
    try:
        with caplog.at_level(logging.INFO, logger="watchkeeper"):
            write_batches(store, 5)
        assert database.with_name("roomy.db-wal").stat().st_size > 0
        assert store.count(RetainedTable.SPANS) == 250
    finally:
        store.close()
    assert not [record for record in caplog.records if "MiB free" in record.msg]
