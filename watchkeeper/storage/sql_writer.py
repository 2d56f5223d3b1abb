"""The store's write path: one batch, one transaction, raw rows bulk-loaded, rollups merged.

Raw rows skip SQLAlchemy's per-row machinery (this is the ingest hot path): SQLite gets prepared
tuples through ``executemany`` and PostgreSQL gets them through ``COPY``. Rollups are
read-merge-written because sketches can only be merged in Python: missing keys are inserted
empty, the batch's rows are read (locked on PostgreSQL, in one global key order so concurrent
writers cannot deadlock), merged with the deltas, and written back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, assert_never

from sqlalchemy import ColumnElement, String, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from watchkeeper.recording.ids import format_span_id, format_trace_id
from watchkeeper.recording.sketch import LatencySketch
from watchkeeper.storage.base import Batch
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection
from watchkeeper.storage.rollups import Dimension, Level, RollupDelta, RollupKey
from watchkeeper.storage.schema import logs, metric_points, rollups, spans

# The row builders below produce values in each table's column order (after the id).
SPAN_COLUMNS = tuple(column.name for column in spans.columns if column.name != "id")
LOG_COLUMNS = tuple(column.name for column in logs.columns if column.name != "id")
METRIC_COLUMNS = tuple(column.name for column in metric_points.columns if column.name != "id")

_KEY_COLUMNS = (
    rollups.c.level,
    rollups.c.bucket,
    rollups.c.kind,
    rollups.c.name,
    rollups.c.dimension,
    rollups.c.value,
)
_KEY_COLUMN_NAMES = tuple(column.name for column in _KEY_COLUMNS)
_KEY_NAMES = tuple(f"k_{name}" for name in _KEY_COLUMN_NAMES)
_KEYS_PER_STATEMENT = 500  # 6 parameters a key stays far below both databases' limits

Row = tuple[Any, ...]


def _attributes(attributes: Mapping[str, Any] | None) -> str | None:
    # default=str: one odd attribute value must not make the batch unwritable forever.
    return json.dumps(attributes, default=str) if attributes else None


def span_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    trace, span_id = format_trace_id, format_span_id
    return [
        (
            trace(s.trace_id),
            span_id(s.span_id),
            span_id(s.parent_id) if s.parent_id else None,
            s.kind.value,
            s.name,
            s.operation,
            s.start,
            s.duration,
            s.status.value,
            s.error_type,
            s.error_message,
            service,
            instance,
            s.user_id,
            s.org_id,
            s.session_id,
            s.model,
            s.input_tokens,
            s.output_tokens,
            s.cost,
            attrs(s.attributes),
        )
        for s in batch.spans
    ]


def log_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    return [
        (
            r.time,
            int(r.level),
            r.logger,
            r.message,
            format_trace_id(r.trace_id) if r.trace_id else None,
            format_span_id(r.span_id) if r.span_id else None,
            service,
            instance,
            r.user_id,
            r.org_id,
            attrs(r.attributes),
        )
        for r in batch.logs
    ]


def metric_rows(batch: Batch) -> list[Row]:
    service, instance, attrs = batch.service, batch.instance, _attributes
    return [
        (p.time, p.name, p.kind.value, p.value, service, instance, p.org_id, attrs(p.attributes))
        for p in batch.metrics
    ]


_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (spans.name, SPAN_COLUMNS),
    (logs.name, LOG_COLUMNS),
    (metric_points.name, METRIC_COLUMNS),
)


def write_batch(connection: Connection, dialect: Dialect, batch: Batch) -> None:
    """Write ``batch`` inside the caller's transaction."""
    raw = (span_rows(batch), log_rows(batch), metric_rows(batch))
    driver = driver_connection(connection)
    for (table, columns), rows in zip(_TABLES, raw, strict=True):
        if rows:
            match dialect:
                case Dialect.SQLITE:
                    _executemany(driver, table, columns, rows)
                case Dialect.POSTGRESQL:
                    _copy(driver, table, columns, rows)
                case _:
                    assert_never(dialect)
    if batch.rollups:
        merge_rollups(connection, dialect, batch.rollups)


def _executemany(driver: Any, table: str, columns: Sequence[str], rows: list[Row]) -> None:
    placeholders = ", ".join("?" * len(columns))
    driver.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def _copy(driver: Any, table: str, columns: Sequence[str], rows: list[Row]) -> None:
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _chunks(keys: Iterable[RollupKey]) -> Iterator[list[RollupKey]]:
    iterator = iter(keys)
    while chunk := list(islice(iterator, _KEYS_PER_STATEMENT)):
        yield chunk


def _insert(dialect: Dialect) -> Insert:
    match dialect:
        case Dialect.SQLITE:
            return sqlite.insert(rollups).on_conflict_do_nothing()
        case Dialect.POSTGRESQL:
            return postgresql.insert(rollups).on_conflict_do_nothing()
        case _:
            assert_never(dialect)


def _lock_order(dialect: Dialect) -> list[ColumnElement[Any]]:
    # Byte order ("C") equals Python's code-point order, so locks follow the sorted batch keys.
    match dialect:
        case Dialect.POSTGRESQL:
            return [c.collate("C") if isinstance(c.type, String) else c for c in _KEY_COLUMNS]
        case Dialect.SQLITE:
            return []  # BEGIN IMMEDIATE already serialises writers
        case _:
            assert_never(dialect)


_VALUES = (
    "count",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost",
    "cost_unknown",
    "duration_sum",
    "sketch",
)
_UPDATE = (
    update(rollups)
    .where(
        *(column == bindparam(name) for column, name in zip(_KEY_COLUMNS, _KEY_NAMES, strict=True))
    )
    .values({name: bindparam(name) for name in _VALUES})
)


def _plain(key: RollupKey) -> tuple[str, int, str, str, str, str]:
    # Plain strings, not enum members: drivers may adapt an Enum by its name.
    return (key.level.value, key.bucket, key.kind, key.name, key.dimension.value, key.value)


def _empty_row(key: RollupKey) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(_KEY_COLUMN_NAMES, _plain(key), strict=True))
    row.update(dict.fromkeys(_VALUES, 0))
    row["sketch"] = None
    return row


def merge_rollups(
    connection: Connection, dialect: Dialect, deltas: Mapping[RollupKey, RollupDelta]
) -> None:
    insert, order = _insert(dialect), _lock_order(dialect)
    for chunk in _chunks(sorted(deltas)):
        connection.execute(insert, [_empty_row(key) for key in chunk])
        query = select(*_KEY_COLUMNS, *(rollups.c[name] for name in _VALUES)).where(
            tuple_(*_KEY_COLUMNS).in_([_plain(key) for key in chunk])
        )
        if order:
            query = query.order_by(*order).with_for_update()
        merged = []
        for row in connection.execute(query):
            key = RollupKey(Level(row[0]), row[1], row[2], row[3], Dimension(row[4]), row[5])
            merged.append(_merged_row(key, row[6:], deltas[key]))
        connection.execute(_UPDATE, merged)


def _merged_row(key: RollupKey, stored: Sequence[Any], delta: RollupDelta) -> dict[str, Any]:
    count, errors, input_tokens, output_tokens, cost, cost_unknown, duration_sum, blob = stored
    total = RollupDelta(
        count,
        errors,
        input_tokens,
        output_tokens,
        cost,
        cost_unknown,
        duration_sum,
        None if blob is None else LatencySketch.from_bytes(bytes(blob)),
    )
    total.merge(delta)
    return {
        **dict(zip(_KEY_NAMES, _plain(key), strict=True)),
        "count": total.count,
        "errors": total.errors,
        "input_tokens": total.input_tokens,
        "output_tokens": total.output_tokens,
        "cost": total.cost,
        "cost_unknown": total.cost_unknown,
        "duration_sum": total.duration_sum,
        "sketch": None if total.sketch is None else total.sketch.to_bytes(),
    }
