"""The store's write path: one batch, one transaction, raw rows bulk-loaded, totals merged.

Raw rows (built beforehand by :mod:`rows`) skip SQLAlchemy's per-row machinery, as this is the
ingest hot path: SQLite gets them through ``executemany`` and PostgreSQL through ``COPY``.
Rollups are read-merge-written because sketches can only be merged in Python: missing keys are
inserted empty, the batch's rows are read (locked on PostgreSQL, in one global key order so
concurrent writers cannot deadlock), merged with the deltas, and written back. Session totals
are plain sums, minima and maxima, so they are merged by the database in one upsert, no read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, assert_never

from sqlalchemy import (
    ColumnCollection,
    String,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from watchkeeper.model.rollups import Dimension, Level, RollupDelta, RollupKey
from watchkeeper.model.sketch import LatencySketch
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection
from watchkeeper.storage.rows import PreparedBatch, Row
from watchkeeper.storage.schema import rollups, sessions

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


def write_batch(connection: Connection, dialect: Dialect, batch: PreparedBatch) -> None:
    """Write a prepared batch inside the caller's transaction."""
    driver = driver_connection(connection)
    for raw, rows in batch.raw:
        match dialect:
            case Dialect.SQLITE:
                _executemany(driver, raw.table.name, raw.columns, rows)
            case Dialect.POSTGRESQL:
                _copy(driver, raw.table.name, raw.columns, rows)
            case _:
                assert_never(dialect)
    # Rollups before sessions in every writer: one global lock order across both tables.
    if batch.rollups:
        merge_rollups(connection, dialect, batch.rollups)
    if batch.sessions:
        connection.execute(_SESSION_UPSERTS[dialect], batch.sessions)


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


# Byte order ("C") equals Python's code-point order, so PostgreSQL's row locks follow the sorted
# batch keys, one global order across writers. (SQLite's BEGIN IMMEDIATE serialises writers.)
_LOCK_ORDER = [c.collate("C") if isinstance(c.type, String) else c for c in _KEY_COLUMNS]


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
    """Merge deltas into stored rollups: sums by upsert, sketches by read-merge-write.

    Most keys (per user, per model…) carry only sums, which the database adds itself in one
    upsert with no read. Only keys with a latency sketch, a few hundred per batch at most, are
    read (locked on PostgreSQL) and merged in Python. Raw driver calls: SQLAlchemy's per-row
    parameter handling cost more than the database work here.
    """
    additive = sorted(key for key, delta in deltas.items() if delta.sketch is None)
    sketched = sorted(key for key, delta in deltas.items() if delta.sketch is not None)
    driver = driver_connection(connection)
    marker = _marker(dialect)
    if additive:
        rows = [_plain(key) + _sums(deltas[key]) for key in additive]
        match dialect:
            case Dialect.SQLITE:
                _executemany_sql(driver, _ADD_SUMS_SQLITE, rows)
            case Dialect.POSTGRESQL:
                # One statement over arrays, a column each: executemany costs a round trip of
                # parameter handling per key, and a batch has thousands of per-user keys.
                columns = [list(column) for column in zip(*rows, strict=True)]
                with driver.cursor() as cursor:
                    cursor.execute(_ADD_SUMS_POSTGRESQL, columns)
            case _:
                assert_never(dialect)
    if not sketched:
        return
    insert = _insert(dialect)
    for chunk in _chunks(sketched):
        connection.execute(insert, [_empty_row(key) for key in chunk])
        merged = [
            _merged_row(key, stored, deltas[key])
            for key, stored in _stored_rollups(connection, dialect, chunk)
        ]
        _executemany_sql(driver, _REPLACE.format(table=rollups.name, mark=marker), merged)


def _stored_rollups(
    connection: Connection, dialect: Dialect, keys: list[RollupKey]
) -> Iterator[tuple[RollupKey, Sequence[Any]]]:
    """The stored values of ``keys`` (which all exist), locked on PostgreSQL in key order."""
    match dialect:
        case Dialect.SQLITE:
            # One indexed lookup per key: SQLite answers a row-value IN over many keys by scanning
            # the whole table, which made every flush slower as rollups accumulated.
            cursor = driver_connection(connection).cursor()
            try:
                for key in keys:
                    yield key, cursor.execute(_READ_ONE, _plain(key)).fetchone()
            finally:
                cursor.close()
        case Dialect.POSTGRESQL:
            query = (
                select(*_KEY_COLUMNS, *(rollups.c[name] for name in _VALUES))
                .where(tuple_(*_KEY_COLUMNS).in_([_plain(key) for key in keys]))
                .order_by(*_LOCK_ORDER)
                .with_for_update()
            )
            for row in connection.execute(query):
                key = RollupKey(Level(row[0]), row[1], row[2], row[3], Dimension(row[4]), row[5])
                yield key, row[6:]
        case _:
            assert_never(dialect)


_READ_ONE = f"SELECT {', '.join(_VALUES)} FROM {rollups.name} WHERE " + " AND ".join(
    f"{name} = ?" for name in _KEY_COLUMN_NAMES
)


_SUM_COLUMNS = (
    "level, bucket, kind, name, dimension, value, count, errors, input_tokens, output_tokens, "
    "cost, cost_unknown, duration_sum"
)
_T = rollups.name
_ADD_ON_CONFLICT = (
    "ON CONFLICT (level, bucket, kind, name, dimension, value) DO UPDATE SET "
    f"count = {_T}.count + excluded.count, errors = {_T}.errors + excluded.errors, "
    f"input_tokens = {_T}.input_tokens + excluded.input_tokens, "
    f"output_tokens = {_T}.output_tokens + excluded.output_tokens, "
    f"cost = {_T}.cost + excluded.cost, cost_unknown = {_T}.cost_unknown + excluded.cost_unknown, "
    f"duration_sum = {_T}.duration_sum + excluded.duration_sum"
)
_ADD_SUMS_SQLITE = (
    f"INSERT INTO {rollups.name} ({_SUM_COLUMNS}) VALUES ({', '.join('?' * 13)}) "
    + _ADD_ON_CONFLICT
)
# unnest keeps the arrays' (sorted) order, so rows are locked in the global key order.
_ADD_SUMS_POSTGRESQL = (
    f"INSERT INTO {rollups.name} ({_SUM_COLUMNS}) SELECT * FROM unnest("
    "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::bigint[], "
    "%s::float8[]) " + _ADD_ON_CONFLICT
)
_REPLACE = (
    "UPDATE {table} SET count = {mark}, errors = {mark}, input_tokens = {mark}, "
    "output_tokens = {mark}, cost = {mark}, cost_unknown = {mark}, duration_sum = {mark}, "
    "sketch = {mark} WHERE level = {mark} AND bucket = {mark} AND kind = {mark} AND name = {mark} "
    "AND dimension = {mark} AND value = {mark}"
)


def _marker(dialect: Dialect) -> str:
    match dialect:
        case Dialect.SQLITE:
            return "?"
        case Dialect.POSTGRESQL:
            return "%s"
        case _:
            assert_never(dialect)


def _executemany_sql(driver: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    # psycopg pipelines executemany, so many rows cost one round trip, not one each.
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _sums(delta: RollupDelta) -> tuple[int, int, int, int, float, int, float]:
    return (
        delta.count,
        delta.errors,
        delta.input_tokens,
        delta.output_tokens,
        delta.cost,
        delta.cost_unknown,
        delta.duration_sum,
    )


def _merged_row(key: RollupKey, stored: Sequence[Any], delta: RollupDelta) -> tuple[Any, ...]:
    """The values of ``_REPLACE``: merged sums and sketch, then the key."""
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
    sketch = None if total.sketch is None else total.sketch.to_bytes()
    return (*_sums(total), sketch, *_plain(key))


def _session_totals(
    new: ColumnCollection[str, Any], least: Callable[..., Any], greatest: Callable[..., Any]
) -> dict[str, Any]:
    """The SET clause merging a stored session (``wk_sessions``) with an incoming one (``new``)."""
    old = sessions.c
    return {
        "user_id": func.coalesce(old.user_id, new.user_id),
        "org_id": func.coalesce(old.org_id, new.org_id),
        "first_seen": least(old.first_seen, new.first_seen),
        "last_seen": greatest(old.last_seen, new.last_seen),
        # Either side may be NULL (not ended yet), and SQLite's max() of a NULL is NULL.
        "ended_at": greatest(
            func.coalesce(old.ended_at, new.ended_at),
            func.coalesce(new.ended_at, old.ended_at),
        ),
        "spans": old.spans + new.spans,
        "errors": old.errors + new.errors,
        "input_tokens": old.input_tokens + new.input_tokens,
        "output_tokens": old.output_tokens + new.output_tokens,
        "cost": old.cost + new.cost,
    }


def _session_upsert(dialect: Dialect) -> Insert:
    match dialect:
        case Dialect.SQLITE:
            lite = sqlite.insert(sessions)
            # SQLite's two-argument min() and max() are its LEAST and GREATEST.
            totals = _session_totals(lite.excluded, func.min, func.max)
            return lite.on_conflict_do_update(index_elements=["session_id"], set_=totals)
        case Dialect.POSTGRESQL:
            pg = postgresql.insert(sessions)
            totals = _session_totals(pg.excluded, func.least, func.greatest)
            return pg.on_conflict_do_update(index_elements=["session_id"], set_=totals)
        case _:
            assert_never(dialect)


_SESSION_UPSERTS = {dialect: _session_upsert(dialect) for dialect in Dialect}
