"""Sustained spans per second from the recorder into SQLite and PostgreSQL, beside raw bulk loads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from bench.common import (
    Result,
    postgres_available,
    postgres_settings,
    realistic_spans,
    sqlite_settings,
)
from watchkeeper.config import Settings
from watchkeeper.model.batch import Batch
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.rows import prepare

BATCH = 10_000


def _through_recorder(settings: Settings, count: int) -> float:
    spans = realistic_spans(count, seed=2)
    recorder = Recorder(settings, sink=StoreHandle(settings)).start()
    started = time.perf_counter()
    for span in spans:
        recorder.submit(span)
    if not recorder.flush(timeout=600):
        raise RuntimeError("the recorder did not finish flushing")
    elapsed = time.perf_counter() - started
    stats = recorder.stats()
    recorder.stop()
    if stats.flushed != count or stats.dropped_total:
        raise RuntimeError(f"lost events: flushed {stats.flushed}, dropped {stats.dropped}")
    return count / elapsed


def _raw(settings: Settings, count: int, postgres: bool) -> float:
    spans = realistic_spans(count, seed=2)
    store = open_store(settings)
    prepared = [
        prepare(Batch("bench", "raw", spans=spans[index : index + BATCH])).raw[0]
        for index in range(0, count, BATCH)
    ]
    started = time.perf_counter()
    with write_transaction(store.engine) as connection:
        driver = driver_connection(connection)
        for raw, rows in prepared:
            columns = ", ".join(raw.columns)
            if postgres:
                with (
                    driver.cursor() as cursor,
                    cursor.copy(f"COPY {raw.table.name} ({columns}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(raw.columns))
                driver.executemany(
                    f"INSERT INTO {raw.table.name} ({columns}) VALUES ({marks})", rows
                )
    elapsed = time.perf_counter() - started
    store.close()
    return count / elapsed


def _pair(
    backend: str, settings_factory: Callable[..., AbstractContextManager[Settings]], count: int
) -> Iterator[tuple[float, float]]:
    options = {"buffer_size": count + 1, "batch_size": BATCH, "flush_interval": 0.2}
    with settings_factory(**options) as settings:
        ours = _through_recorder(settings, count)
    with settings_factory() as settings:
        raw = _raw(settings, count, postgres=backend == "PostgreSQL")
    yield ours, raw


def run(quick: bool) -> list[Result]:
    count = 50_000 if quick else 200_000
    results = []
    for ours, raw in _pair("SQLite", sqlite_settings, count):
        results.append(
            Result(
                "ingest: SQLite",
                "recorder → SQLite",
                ours,
                "raw executemany",
                raw,
                "spans/s",
                "≥ 0.5×",
                ours >= 0.5 * raw,
            )
        )
    if postgres_available():
        for ours, raw in _pair("PostgreSQL", postgres_settings, count):
            results.append(
                Result(
                    "ingest: PostgreSQL",
                    "recorder → PostgreSQL",
                    ours,
                    "raw COPY",
                    raw,
                    "spans/s",
                    "≥ 100,000/s",
                    ours >= 100_000,
                )
            )
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
