"""The SQLite writer's reads stay index lookups however many rollups are stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.support.stores import T0, StoreTarget, batch_of, span
from watchkeeper.storage import migrate
from watchkeeper.storage.sql_store import SqlStore

_WHOLE_KEY_SEEK = "(level=? AND bucket=? AND kind=? AND name=? AND dimension=? AND value=?)"


def test_merging_rollups_reads_each_key_through_the_index(tmp_path: Path) -> None:
    engine = StoreTarget(f"sqlite:///{tmp_path / 'plans.db'}").engine()
    executed: list[str] = []

    @event.listens_for(engine, "connect")
    def trace(connection: sqlite3.Connection, _record: Any) -> None:
        connection.set_trace_callback(executed.append)  # statements with their values filled in

    store = SqlStore(engine)
    try:
        migrate.upgrade(store.engine)
        spans = [span(T0 + 60 * i, 0.1, name=f"GET /r{i % 50}") for i in range(300)]
        store.write(batch_of(spans))
        executed.clear()
        store.write(batch_of(spans))  # the same keys again: every sketch is read and merged

        reads = [sql for sql in executed if "wk_rollups" in sql and "SELECT" in sql.upper()]
        assert reads
        with sqlite3.connect(tmp_path / "plans.db") as connection:
            for sql in reads:
                plan = " ".join(
                    str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert "SCAN wk_rollups" not in plan, (sql, plan)
                # A seek on the whole key, not a range of the (dimension, level, bucket) index.
                assert _WHOLE_KEY_SEEK in plan, (sql, plan)
    finally:
        store.close()
