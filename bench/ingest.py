"""Sustained spans per second through the pipeline into SQLite and PostgreSQL, beside raw loads.

The pipeline is what a collector runs: spans submitted to a started ``Recorder``, whose flush
worker builds each batch (redaction, live windows, rollups, sessions) and hands it to the real
store through ``StoreHandle`` → ``SqlStore.write`` (rows, rollups merged, sessions upserted, one
transaction a batch). The raw baseline loads the same spans' ``wk_spans`` rows, built before the
clock starts, with one ``executemany`` (SQLite) or one binary ``COPY`` (PostgreSQL) a batch,
into a freshly migrated store: the same table and indexes, and none of the pipeline's work.

Both run ``ROUNDS`` times, interleaved, each into a fresh store; the median of each is reported.
Beside them: each rate against the 100,000 spans/s target, and where a span's time goes (CPU
per span of this process, and on PostgreSQL of the server process that wrote), which says what
bounds the pipeline on a machine too noisy for rates alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psutil
from sqlalchemy.engine import Engine

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
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.rows import RAW_TABLES, Row, prepare
from watchkeeper.storage.sql_store import SqlStore
from watchkeeper.storage.sql_writer import binary_types

BATCH = 10_000
TARGET = 100_000
"""Spans per second a collector must write (issue: collector ingest)."""

SettingsFactory = Callable[..., AbstractContextManager[Settings]]


@dataclass(frozen=True)
class Run:
    rate: float
    """Spans per second, wall clock."""
    client_cpu: float
    """CPU seconds per span of this process (every thread)."""
    server_cpu: float
    """CPU seconds per span of the PostgreSQL server processes that wrote (0 for SQLite)."""


class _ServerCpu:
    """CPU time of the PostgreSQL server processes serving this process's connections.

    Found by the client port of each of this process's connections, so only a server on this
    machine is measured (elsewhere, the figure stays 0). Call :meth:`track` while the writer's
    connection is open, before and after the timed part.
    """

    def __init__(self) -> None:
        self._start: dict[int, tuple[psutil.Process, float]] = {}

    def track(self, engine: Engine) -> None:
        if Dialect.of(engine.url) is not Dialect.POSTGRESQL:
            return
        ports = [
            connection.laddr.port
            for connection in psutil.Process().net_connections(kind="tcp")
            if connection.raddr and connection.raddr.port == engine.url.port
        ]
        with engine.connect() as connection:
            pids = connection.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%(ports)s)",
                {"ports": ports},
            ).scalars()
            for pid in pids:
                if pid not in self._start:
                    try:
                        process = psutil.Process(pid)
                        self._start[pid] = (process, _cpu(process))
                    except psutil.Error:
                        continue

    def used(self) -> float:
        total = 0.0
        for process, start in self._start.values():
            try:
                total += _cpu(process) - start
            except psutil.Error:
                continue
        return total


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _process_cpu() -> float:
    return _cpu(psutil.Process())


def _through_pipeline(settings: Settings, count: int) -> Run:
    spans = realistic_spans(count, seed=2)
    handle = StoreHandle(settings)
    recorder = Recorder(settings, sink=handle).start()
    handle.open_in_background()
    if not handle.wait_open(60):
        raise RuntimeError(f"the store did not open: {handle.last_error}")
    store = handle.current()
    if not isinstance(store, SqlStore):
        raise TypeError(f"expected the SQL store, got {type(store).__name__}")
    engine = store.engine
    server = _ServerCpu()
    recorder.submit(spans[0])  # one write first, so the writer's connection is open and known
    if not recorder.flush(timeout=60):
        raise RuntimeError("the recorder did not flush its first span")
    server.track(engine)
    client = _process_cpu()
    started = time.perf_counter()
    for span in spans[1:]:
        recorder.submit(span)
    if not recorder.flush(timeout=600):
        raise RuntimeError("the recorder did not finish flushing")
    elapsed = time.perf_counter() - started
    client = _process_cpu() - client
    server.track(engine)  # a write may have taken another pooled connection: count it from here
    written = count - 1
    run = Run(written / elapsed, client / written, server.used() / written)
    stats = recorder.stats()
    recorder.stop()
    if stats.flushed != count or stats.dropped_total:
        raise RuntimeError(f"lost events: flushed {stats.flushed}, dropped {stats.dropped}")
    return run


def _raw(settings: Settings, count: int) -> Run:
    spans = realistic_spans(count, seed=2)
    store = open_store(settings)
    batches = [
        prepare(Batch("bench", "raw", spans=spans[index : index + BATCH])).raw[0][1]
        for index in range(0, count, BATCH)
    ]
    table = RAW_TABLES[0]
    columns = ", ".join(table.columns)
    marks = ", ".join("?" * len(table.columns))
    types = binary_types(table.table, table.columns)

    def load(rows: list[Row], driver: Any) -> None:
        if store.dialect is Dialect.POSTGRESQL:
            copy_sql = f"COPY {table.table.name} ({columns}) FROM STDIN (FORMAT BINARY)"
            with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        else:
            insert = f"INSERT INTO {table.table.name} ({columns}) VALUES ({marks})"
            driver.executemany(insert, rows)

    with write_transaction(store.engine):  # the writer's connection, opened and pooled
        pass
    server = _ServerCpu()
    server.track(store.engine)
    client = _process_cpu()
    started = time.perf_counter()
    for rows in batches:  # a transaction a batch, as the pipeline commits
        with write_transaction(store.engine) as connection:
            load(rows, driver_connection(connection))
    elapsed = time.perf_counter() - started
    client = _process_cpu() - client
    run = Run(count / elapsed, client / count, server.used() / count)
    store.close()
    return run


raw_load = _raw
"""The raw baseline, for the collector's ingest benchmark to set beside its own figure."""


def _median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(run.rate for run in runs),
        statistics.median(run.client_cpu for run in runs),
        statistics.median(run.server_cpu for run in runs),
    )


def _measure(factory: SettingsFactory, count: int, rounds: int) -> tuple[Run, Run]:
    pipeline: list[Run] = []
    raw: list[Run] = []
    options = {"buffer_size": count + 1, "batch_size": BATCH, "flush_interval": 0.2}
    for _ in range(rounds):
        with factory(**options) as settings:
            pipeline.append(_through_pipeline(settings, count))
        with factory() as settings:
            raw.append(_raw(settings, count))
    return _median(pipeline), _median(raw)


def _cpu_label(name: str, run: Run, postgres: bool) -> str:
    if not postgres:
        return name
    return f"{name} ({run.client_cpu * 1e6:.1f} here + {run.server_cpu * 1e6:.1f} server)"


def _rows(name: str, raw_label: str, pipeline: Run, raw: Run, postgres: bool) -> list[Result]:
    return [
        Result(
            f"ingest: {name}",
            f"pipeline → {name}",
            pipeline.rate,
            raw_label,
            raw.rate,
            "spans/s",
            f"≥ {TARGET:,}/s",
            pipeline.rate >= TARGET,
        ),
        Result(
            f"ingest: {name}, against the target",
            "pipeline",
            pipeline.rate,
            "target",
            TARGET,
            "spans/s",
            "(information)",
            True,
        ),
        Result(
            f"ingest: {name}, raw load against the target",
            raw_label,
            raw.rate,
            "target",
            TARGET,
            "spans/s",
            "(information: the ceiling with these indexes)",
            True,
        ),
        Result(
            f"ingest: {name}, CPU per span",
            _cpu_label("pipeline", pipeline, postgres),
            (pipeline.client_cpu + pipeline.server_cpu) * 1e6,
            _cpu_label(raw_label, raw, postgres),
            (raw.client_cpu + raw.server_cpu) * 1e6,
            "µs",
            "(information)",
            True,
        ),
    ]


def run(quick: bool) -> list[Result]:
    count, rounds = (50_000, 1) if quick else (200_000, 3)
    pipeline, raw = _measure(sqlite_settings, count, rounds)
    results = _rows("SQLite", "raw executemany", pipeline, raw, postgres=False)
    if postgres_available():
        pipeline, raw = _measure(postgres_settings, count, rounds)
        results += _rows("PostgreSQL", "raw binary COPY", pipeline, raw, postgres=True)
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
