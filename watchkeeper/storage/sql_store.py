"""The SQL backend of :class:`~watchkeeper.storage.base.Store`, for SQLite and PostgreSQL alike.

Writes live in :mod:`rows` and :mod:`sql_writer`, reads in the ``sql_*`` query modules; this
class owns the engine, the transactions, and turning database errors into
:class:`StoreUnavailable` or :class:`BatchRejected` (see :mod:`errors`) with a message an
operator can act on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, assert_never

from sqlalchemy import Column, ColumnElement, Table, delete, func, select, text, tuple_
from sqlalchemy.engine import Connection, Engine

from watchkeeper.model.batch import Batch
from watchkeeper.model.error_groups import ErrorFlag, ErrorStatus
from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.model.events import Severity, SpanKind
from watchkeeper.model.query import (
    LogFilter,
    Page,
    RetainedTable,
    Scope,
    SpanFilter,
    SpikeRule,
    TimeRange,
    TraceFilter,
)
from watchkeeper.model.rollups import Dimension, Level
from watchkeeper.model.stored import (
    ErrorGroup,
    ErrorGroupDetail,
    NameSummary,
    RequestUsage,
    SeriesPoint,
    SessionDetail,
    StoredLog,
    StoredMetric,
    StoredSession,
    StoredSpan,
    StoredValidation,
    TraceSummary,
    UsageRow,
)
from watchkeeper.storage import (
    sql_error_groups,
    sql_issues,
    sql_logs,
    sql_queries,
    sql_sessions,
    sql_summaries,
)
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.errors import (
    DATABASE_ERRORS,
    WRITE_ERRORS,
    classify_write_error,
    describe_error,
)
from watchkeeper.storage.rows import PreparedBatch, prepare
from watchkeeper.storage.schema import (
    error_counts,
    error_fingerprints,
    error_groups,
    error_samples,
    error_users,
    logs,
    metric_points,
    rollups,
    sessions,
    snapshots,
    spans,
    validations,
    written_batches,
)
from watchkeeper.storage.sql_writer import claim_batch, write_batch
from watchkeeper.storage.sqlite_room import LOW_DISK_BYTES, WalRoom

_NO_FILTER = SpanFilter()
_NO_LOG_FILTER = LogFilter()
_SPIKE = SpikeRule()
_NO_TRACE_FILTER = TraceFilter()
_MALFORMED = (TypeError, ValueError, AttributeError, OverflowError)
"""What building rows raises for an event holding values of the wrong type."""


@contextmanager
def _unavailable_on_error(action: str) -> Iterator[None]:
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(f"could not {action}: {describe_error(exc)}") from exc


def _prepare(batch: Batch, action: str) -> PreparedBatch:
    try:
        return prepare(batch)
    except _MALFORMED as exc:
        # The class only, and no chain: the message of such an error quotes the value.
        raise BatchRejected(f"could not {action}: malformed event: {type(exc).__name__}") from None


def _described(batch: Batch) -> str:
    """What a batch holds, by kind and count: never its values (messages are logged)."""
    parts = (
        ("span", len(batch.spans)),
        ("log", len(batch.logs)),
        ("metric point", len(batch.metrics)),
        ("snapshot", len(batch.snapshots)),
        ("validation result", len(batch.validations)),
        ("session mark", len(batch.session_marks)),
    )
    kinds = ", ".join(_counted(count, kind) for kind, count in parts if count)
    return (
        f"write a batch of {_counted(len(batch), 'event')} ({kinds})" if kinds else "write a batch"
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True, slots=True)
class _Retained:
    """Where a retained kind of row lives: its table, its time column, its rollup level if any."""

    table: Table
    time: ColumnElement[Any]
    level: Level | None = None
    dependents: tuple[Column[Any], ...] = ()
    """Columns of other tables naming this table's key: their rows go with the row they name."""

    def rows(self) -> list[ColumnElement[bool]]:
        return [] if self.level is None else [rollups.c.level == self.level.value]


def _retained(table: RetainedTable) -> _Retained:
    match table:
        case RetainedTable.SPANS:
            return _Retained(spans, spans.c.start_time)
        case RetainedTable.LOGS:
            return _Retained(logs, logs.c.time)
        case RetainedTable.METRICS:
            return _Retained(metric_points, metric_points.c.time)
        case RetainedTable.MINUTE_ROLLUPS:
            return _Retained(rollups, rollups.c.bucket, Level.MINUTE)
        case RetainedTable.HOUR_ROLLUPS:
            return _Retained(rollups, rollups.c.bucket, Level.HOUR)
        case RetainedTable.SNAPSHOTS:
            return _Retained(snapshots, snapshots.c.time)
        case RetainedTable.VALIDATIONS:
            return _Retained(validations, validations.c.time)
        case RetainedTable.SESSIONS:
            return _Retained(sessions, sessions.c.last_seen)
        case RetainedTable.ERROR_GROUPS:
            # A group's hashes under every grouping version: nothing else would remove them.
            return _Retained(
                error_groups, error_groups.c.last_seen, dependents=(error_fingerprints.c.group_id,)
            )
        case RetainedTable.ERROR_COUNTS:
            return _Retained(error_counts, error_counts.c.bucket)
        case RetainedTable.ERROR_USERS:
            return _Retained(error_users, error_users.c.last_seen)
        case RetainedTable.ERROR_SAMPLES:
            return _Retained(error_samples, error_samples.c.time)
        case RetainedTable.WRITTEN_BATCHES:
            return _Retained(written_batches, written_batches.c.written_at)
        case _:
            assert_never(table)


def _wal_room(engine: Engine, dialect: Dialect, low_disk_bytes: int) -> WalRoom | None:
    match dialect:
        case Dialect.SQLITE:
            database = engine.url.database
            if not database or database == ":memory:":
                return None
            return WalRoom(Path(database), low_disk_bytes)
        case Dialect.POSTGRESQL:
            return None
        case _:
            assert_never(dialect)


class SqlStore:
    """A :class:`~watchkeeper.storage.base.Store` over a SQLAlchemy engine.

    Safe to share between one writer thread and any number of reader threads: each call takes
    its own pooled connection.
    """

    def __init__(self, engine: Engine, low_disk_bytes: int = LOW_DISK_BYTES) -> None:
        """``low_disk_bytes``: for a SQLite file, the free space below which each write
        empties the write-ahead log (see :mod:`sqlite_room`)."""
        self.engine = engine
        self.dialect = Dialect.of(engine.url)
        self._wal_room = _wal_room(engine, self.dialect, low_disk_bytes)

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with _unavailable_on_error(action), self.engine.connect() as connection:
            yield connection

    def write(self, batch: Batch) -> None:
        """Store the whole batch in one transaction, or nothing.

        Raises :class:`StoreUnavailable` when the store cannot take it now (retry) and
        :class:`BatchRejected` when its values can never be stored (drop it).
        """
        if not len(batch) and not batch.rollups and not batch.sessions:
            return
        action = _described(batch)
        prepared = _prepare(batch, action)  # before the transaction: SQLite's lock waits less
        try:
            with write_transaction(self.engine) as connection:
                if claim_batch(connection, self.dialect, batch.batch_id, time.time()):
                    write_batch(connection, self.dialect, prepared)
        except WRITE_ERRORS as exc:
            error = classify_write_error(exc, action)
            if isinstance(error, BatchRejected):
                # No chain: SQLAlchemy's error lists the parameters, and the worker logs a
                # rejection with its traceback, which would print them.
                raise error from None
            raise error from exc
        if self._wal_room is not None:
            self._wal_room.after_write(self.engine)

    def ping(self) -> None:
        with self._read("reach the store") as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    def after_fork_in_child(self) -> None:
        """Leave the parent's pooled connections to the parent: a forked child opens its own."""
        self.forget_connections()

    def forget_connections(self) -> None:
        """Drop the pool without closing its connections: closing a connection stuck in a dead
        socket could block too, and a forked child's close would end its parent's sessions."""
        self.engine.dispose(close=False)

    def overview(
        self, time_range: TimeRange, scope: Scope, kind: SpanKind | None = None
    ) -> list[NameSummary]:
        with self._read("summarise spans") as connection:
            return sql_summaries.overview(connection, time_range, scope, kind)

    def kind_totals(self, time_range: TimeRange, scope: Scope) -> list[NameSummary]:
        with self._read("summarise spans by kind") as connection:
            return sql_summaries.kind_totals(connection, time_range, scope)

    def series(
        self,
        time_range: TimeRange,
        scope: Scope,
        step: Level,
        kind: SpanKind | None = None,
        name: str | None = None,
    ) -> list[SeriesPoint]:
        with self._read("read a time series") as connection:
            return sql_summaries.series(connection, time_range, scope, step, kind, name)

    def spans(
        self,
        time_range: TimeRange,
        scope: Scope,
        span_filter: SpanFilter = _NO_FILTER,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredSpan]:
        with self._read("list spans") as connection:
            return sql_queries.span_page(connection, time_range, scope, span_filter, limit, cursor)

    def trace(self, trace_id: str, scope: Scope) -> list[StoredSpan]:
        with self._read("read a trace") as connection:
            return sql_queries.trace(connection, trace_id, scope)

    def usage(
        self, time_range: TimeRange, scope: Scope, dimension: Dimension, limit: int = 100
    ) -> list[UsageRow]:
        with self._read("sum usage") as connection:
            return sql_summaries.usage(connection, time_range, scope, dimension, limit)

    def logs(
        self,
        time_range: TimeRange,
        scope: Scope,
        min_level: int = 0,
        text: str | None = None,
        trace_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        where: LogFilter = _NO_LOG_FILTER,
    ) -> Page[StoredLog]:
        with self._read("search logs") as connection:
            return sql_logs.log_page(
                connection, time_range, scope, min_level, text, trace_id, where, limit, cursor
            )

    def metrics(
        self, time_range: TimeRange, scope: Scope, name: str, limit: int = 1000
    ) -> list[StoredMetric]:
        with self._read("read metric points") as connection:
            return sql_queries.metric_points_in(connection, time_range, scope, name, limit)

    def sessions(
        self,
        time_range: TimeRange,
        scope: Scope,
        search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredSession]:
        with self._read("list sessions") as connection:
            return sql_sessions.session_page(connection, time_range, scope, search, limit, cursor)

    def session(self, session_id: str, scope: Scope) -> SessionDetail | None:
        with self._read("read a session") as connection:
            return sql_sessions.session_detail(connection, session_id, scope)

    def validations(
        self,
        time_range: TimeRange,
        scope: Scope,
        failed_only: bool = False,
        severity: Severity | None = None,
        target: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredValidation]:
        with self._read("list validation results") as connection:
            return sql_issues.validation_page(
                connection, time_range, scope, failed_only, severity, target, limit, cursor
            )

    def error_groups(
        self,
        time_range: TimeRange,
        scope: Scope,
        limit: int = 100,
        status: ErrorStatus | None = None,
        flag: ErrorFlag | None = None,
        spike: SpikeRule = _SPIKE,
    ) -> list[ErrorGroup]:
        with self._read("list error groups") as connection:
            return sql_error_groups.error_group_list(
                connection, time_range, scope, limit, status, flag, spike
            )

    def error_group(
        self, group_id: str, time_range: TimeRange, scope: Scope, spike: SpikeRule = _SPIKE
    ) -> ErrorGroupDetail | None:
        with self._read("read an error group") as connection:
            return sql_error_groups.error_group_detail(
                connection, group_id, time_range, scope, spike
            )

    def set_error_status(self, group_id: str, status: ErrorStatus, now: float) -> bool:
        with (
            _unavailable_on_error("set an error group's status"),
            write_transaction(self.engine) as connection,
        ):
            return sql_error_groups.set_status(connection, group_id, status, now)

    def request_usage(
        self, time_range: TimeRange, scope: Scope, step: Level, name: str | None = None
    ) -> list[RequestUsage]:
        with self._read("sum the usage of requests") as connection:
            return sql_summaries.request_usage(connection, time_range, scope, step, name)

    def traces(
        self,
        time_range: TimeRange,
        scope: Scope,
        trace_filter: TraceFilter = _NO_TRACE_FILTER,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[TraceSummary]:
        with self._read("list traces") as connection:
            return sql_queries.trace_page(
                connection, time_range, scope, trace_filter, limit, cursor
            )

    def delete_expired(self, table: RetainedTable, before: datetime, batch_size: int) -> int:
        """Delete up to ``batch_size`` rows older than ``before`` in one short statement."""
        retained = _retained(table)
        key_columns = list(retained.table.primary_key.columns)
        oldest = (
            select(*key_columns)
            .where(*retained.rows(), retained.time < before.timestamp())
            .limit(batch_size)
        )
        with (
            _unavailable_on_error(f"delete expired {table.value}"),
            write_transaction(self.engine) as connection,
        ):
            if retained.dependents:
                # Read once, so the rows named and the rows deleted are the same ones.
                (key,) = key_columns
                keys = connection.execute(oldest).scalars().all()
                for dependent in retained.dependents:
                    connection.execute(delete(dependent.table).where(dependent.in_(keys)))
                return connection.execute(delete(retained.table).where(key.in_(keys))).rowcount
            statement = delete(retained.table).where(tuple_(*key_columns).in_(oldest))
            return connection.execute(statement).rowcount

    def count(self, table: RetainedTable) -> int:
        retained = _retained(table)
        query = select(func.count()).select_from(retained.table).where(*retained.rows())
        with self._read(f"count {table.value}") as connection:
            return int(connection.execute(query).scalar_one())
