"""Retention runs inside the processes that write the store: on their interval, one replica's
turn at a time, audited, and never in the way of recording when the store is away."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.runtimes import run_until
from tests.support.stores import batch_of, span
from watchkeeper.access.audit import AuditEntry, AuditLog
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.query import RetainedTable
from watchkeeper.runtime.retention import RetentionJob
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.schema import spans
from watchkeeper.storage.sql_store import SqlStore

HOUR = 3600.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, object] = {"retention_spans": HOUR, "retention_interval": 0.5}
    if request.param == "sqlite":
        return load_settings(sqlite_path=tmp_path / "watchkeeper.db", **common)
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return load_settings(database_url=url, database_schema=schema, **common)


@pytest.fixture
def store(settings: Settings) -> Iterator[SqlStore]:
    """Two hours of spans: the older one past the hour kept."""
    store = open_store(settings)
    now = time.time()
    store.write(batch_of([span(now - 2 * HOUR + index) for index in range(30)]))
    store.write(batch_of([span(now - 60 + index) for index in range(5)]))
    try:
        yield store
    finally:
        store.close()


def stored_spans(store: SqlStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(spans)).scalar_one())


def runs(store: SqlStore) -> list[AuditEntry]:
    now = datetime.now(UTC)
    return AuditLog(lambda: store).entries(
        None, True, now - timedelta(days=1), now + timedelta(days=1), "retention.applied"
    )


def test_a_process_that_writes_the_store_applies_retention_on_its_interval(
    settings: Settings, store: SqlStore
) -> None:
    assert stored_spans(store) == 35
    run_until(settings, store, lambda: bool(runs(store)), "a retention run")
    assert stored_spans(store) == 5
    [entry] = runs(store)
    assert entry.key_id == "process"
    assert entry.after is not None
    assert entry.after["deleted"]["spans"] == 30
    assert entry.after["periods"]["retention_spans"] == HOUR
    assert entry.after["finished"] is True


def test_replicas_take_turns_through_the_audit_log(settings: Settings, store: SqlStore) -> None:
    handle = StoreHandle(settings, store)
    first, second = RetentionJob(settings, handle), RetentionJob(settings, handle)
    counts = first.turn()
    assert counts is not None
    assert counts["spans"] == 30
    # Within the interval, another replica's turn finds the run and skips it.
    assert second.turn() is None
    assert (first.runs, second.runs, len(runs(store))) == (1, 0, 1)
    # Past it, the next turn runs again, whichever replica it falls to.
    later = settings.model_copy(update={"retention_interval": 0.01})
    time.sleep(0.05)  # the interval being waited out, not a worker
    assert RetentionJob(later, handle).turn() == {**counts, "spans": 0}
    assert len(runs(store)) == 2


def test_stopping_waits_for_the_batch_under_way_and_ends_the_run_there(
    settings: Settings, store: SqlStore
) -> None:
    in_batch, release = threading.Event(), threading.Event()

    class Paused(SqlStore):
        """Holds each batch until the test releases it."""

        def delete_expired(self, table: RetainedTable, before: datetime, batch_size: int) -> int:
            in_batch.set()
            release.wait(60)
            return super().delete_expired(table, before, batch_size)

    job = RetentionJob(settings, StoreHandle(settings, Paused(store.engine)))

    async def stop_during_a_batch() -> None:
        await job.start()
        assert await asyncio.to_thread(in_batch.wait, 60), "no run started"
        stopping = asyncio.create_task(job.stop())
        await asyncio.sleep(0)  # stop() sets its flag before its first wait
        assert not stopping.done()
        release.set()
        await stopping
        # stop() returned once the run had ended (the store may be closed next).
        assert job.runs == 1

    asyncio.run(stop_during_a_batch())
    # The run ended after its first batch: the other tables were left for the next one.
    [entry] = runs(store)
    assert entry.after is not None
    assert entry.after["finished"] is False
    assert entry.after["deleted"]["spans"] == 30
    assert entry.after["deleted"]["logs"] == 0
    assert stored_spans(store) == 5


def test_none_runs_when_the_interval_is_zero(tmp_path: Path) -> None:
    settings = load_settings(sqlite_path=tmp_path / "watchkeeper.db", retention_interval=0)
    job = RetentionJob(settings, StoreHandle(settings, open_store(settings)))

    async def start_and_stop() -> bool:
        await job.start()
        started = job._task is not None
        await job.stop()
        return started

    assert asyncio.run(start_and_stop()) is False
