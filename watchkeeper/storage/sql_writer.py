"""The store's write path: one batch, one transaction, raw rows bulk-loaded, totals merged.

Raw rows (built beforehand by :mod:`rows`) skip SQLAlchemy's per-row machinery, as this is the
ingest hot path: SQLite gets them through ``executemany`` and PostgreSQL through binary ``COPY``
(typed by the schema, so neither side formats or parses text).

Rollup sums are added by the database in one upsert. Latency sketches can only be merged in
Python, so a sketched key that already has a row is read, merged with its delta and written
back; a new one is inserted whole by the same upsert. On PostgreSQL the upsert takes every
key's row lock in one global key order (concurrent writers cannot deadlock), and each step is
one statement over arrays, whatever the batch's size. Session totals are plain sums, minima
and maxima, so they are merged by the database in one upsert, no read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, assert_never

from sqlalchemy import BigInteger, Boolean, Double, Integer, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from watchkeeper.model.rollups import RollupDelta, RollupKey
from watchkeeper.model.sketch import LatencySketch
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection
from watchkeeper.storage.rows import RAW_TABLES, PreparedBatch, RawTable, Row
from watchkeeper.storage.schema import rollups, sessions, written_batches
from watchkeeper.storage.sql_error_groups import write_error_groups


def claim_batch(connection: Connection, dialect: Dialect, batch_id: int, now: float) -> bool:
    """Record in the caller's transaction that ``batch_id`` is written; ``False`` if it was
    already (a retry of a batch whose commit's answer was lost). On PostgreSQL a retry that
    meets the first write still under way waits for its outcome on the key's lock."""
    values = {"batch_id": batch_id, "written_at": now}
    claim: Insert
    match dialect:
        case Dialect.SQLITE:
            claim = sqlite_insert(written_batches).values(values).on_conflict_do_nothing()
        case Dialect.POSTGRESQL:
            claim = postgresql_insert(written_batches).values(values).on_conflict_do_nothing()
        case _:
            assert_never(dialect)
    # RETURNING, not the row count, which the PostgreSQL driver leaves unknown (-1) here.
    return connection.execute(claim.returning(written_batches.c.batch_id)).first() is not None


def write_batch(connection: Connection, dialect: Dialect, batch: PreparedBatch) -> None:
    """Write a prepared batch inside the caller's transaction."""
    driver = driver_connection(connection)
    for raw, rows in batch.raw:
        match dialect:
            case Dialect.SQLITE:
                _executemany(driver, raw.table.name, raw.columns, rows)
            case Dialect.POSTGRESQL:
                _copy(driver, raw, rows)
            case _:
                assert_never(dialect)
    # Rollups, sessions, then error groups in every writer: one global lock order across them.
    if batch.rollups:
        merge_rollups(connection, dialect, batch.rollups)
    if batch.sessions:
        _upsert_sessions(driver, dialect, batch.sessions)
    write_error_groups(connection, dialect, batch.errors)


def _executemany(driver: Any, table: str, columns: Sequence[str], rows: list[Row]) -> None:
    placeholders = ", ".join("?" * len(columns))
    driver.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)


def _binary_type(column_type: TypeEngine[Any]) -> str:
    """The PostgreSQL type whose binary form ``COPY`` sends for a column (text for CHAR too)."""
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, BigInteger):
        return "int8"
    if isinstance(column_type, Integer):
        return "int4"
    if isinstance(column_type, Double):
        return "float8"
    return "text"


def binary_types(table: Table, columns: Sequence[str]) -> list[str]:
    """The types a binary ``COPY`` of ``columns`` of ``table`` sends, in order."""
    return [_binary_type(table.c[name].type) for name in columns]


_COPY_TYPES = {raw.table.name: binary_types(raw.table, raw.columns) for raw in RAW_TABLES}


def _copy(driver: Any, raw: RawTable, rows: list[Row]) -> None:
    # Binary: the client packs numbers instead of formatting them, and the server reads them
    # instead of parsing text, which cost both sides more than the rows' index insertions.
    statement = f"COPY {raw.table.name} ({', '.join(raw.columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(_COPY_TYPES[raw.table.name])
        for row in rows:
            copy.write_row(row)


_KEY_COLUMNS = ("level", "bucket", "kind", "name", "dimension", "value")
_VALUE_COLUMNS = (
    "count",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost",
    "cost_unknown",
    "duration_sum",
    "sketch",
)
_COLUMNS = _KEY_COLUMNS + _VALUE_COLUMNS
"""A rollup row as the writer builds it: its key, then its values (the table's own order)."""
_KEY_WIDTH = len(_KEY_COLUMNS)
_T = rollups.name


def _plain(key: RollupKey) -> tuple[str, int, str, str, str, str]:
    # Plain strings, not enum members: drivers may adapt an Enum by its name.
    return (key.level.value, key.bucket, key.kind, key.name, key.dimension.value, key.value)


def _values(delta: RollupDelta) -> tuple[Any, ...]:
    sketch = None if delta.sketch is None else delta.sketch.to_bytes()
    return (
        delta.count,
        delta.errors,
        delta.input_tokens,
        delta.output_tokens,
        delta.cost,
        delta.cost_unknown,
        delta.duration_sum,
        sketch,
    )


def _merged(row: Row, stored: Sequence[Any], delta: RollupDelta) -> Row:
    """``row`` (a key and its delta) with the stored values merged in: the row to write back."""
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
    return row[:_KEY_WIDTH] + _values(total)


def merge_rollups(
    connection: Connection, dialect: Dialect, deltas: Mapping[RollupKey, RollupDelta]
) -> None:
    """Merge deltas into stored rollups: sums by upsert, sketches by read-merge-write.

    Most keys (per user, per model…) carry only sums, which the database adds itself with no
    read. Only keys with a latency sketch that are already stored, a few hundred per batch at
    most, are read and merged in Python. Raw driver calls: SQLAlchemy's per-row parameter
    handling cost more than the database work here.
    """
    keys = sorted(deltas)
    rows = [_plain(key) + _values(deltas[key]) for key in keys]
    driver = driver_connection(connection)
    match dialect:
        case Dialect.SQLITE:
            _merge_sqlite(driver, keys, rows, deltas)
        case Dialect.POSTGRESQL:
            _merge_postgresql(driver, keys, rows, deltas)
        case _:
            assert_never(dialect)


_ADD_SUMS = (
    f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET "
    f"count = {_T}.count + excluded.count, errors = {_T}.errors + excluded.errors, "
    f"input_tokens = {_T}.input_tokens + excluded.input_tokens, "
    f"output_tokens = {_T}.output_tokens + excluded.output_tokens, "
    f"cost = {_T}.cost + excluded.cost, cost_unknown = {_T}.cost_unknown + excluded.cost_unknown, "
    f"duration_sum = {_T}.duration_sum + excluded.duration_sum"
)


def _merge_sqlite(
    driver: Any, keys: list[RollupKey], rows: list[Row], deltas: Mapping[RollupKey, RollupDelta]
) -> None:
    # BEGIN IMMEDIATE holds the file's write lock, so no other writer can add a key between a
    # read that found none and the insert.
    cursor = driver.cursor()
    try:
        upserted, merged = [], []
        for key, row in zip(keys, rows, strict=True):
            delta = deltas[key]
            if delta.sketch is not None:
                # One indexed lookup per key: SQLite answers a row-value IN over many keys by
                # scanning the whole table, which made every flush slower as rollups accumulated.
                stored = cursor.execute(_READ_ONE, row[:_KEY_WIDTH]).fetchone()
                if stored is not None:
                    merged.append(_merged(row, stored, delta))
                    continue
            upserted.append(row)
        cursor.executemany(_UPSERT_SQLITE, upserted)
        cursor.executemany(_REPLACE_SQLITE, merged)
    finally:
        cursor.close()


_READ_ONE = f"SELECT {', '.join(_VALUE_COLUMNS)} FROM {_T} WHERE " + " AND ".join(
    f"{name} = ?" for name in _KEY_COLUMNS
)
_UPSERT_SQLITE = (
    f"INSERT INTO {_T} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    + _ADD_SUMS
)
# Numbered parameters: the same row layout as every other statement here, key first.
_REPLACE_SQLITE = (
    f"UPDATE {_T} SET "
    + ", ".join(
        f"{name} = ?{number}" for number, name in enumerate(_COLUMNS, 1) if name in _VALUE_COLUMNS
    )
    + " WHERE "
    + " AND ".join(f"{name} = ?{number}" for number, name in enumerate(_KEY_COLUMNS, 1))
)


def _arrays(rows: Sequence[Row]) -> list[list[Any]]:
    """One list per column: a statement over arrays costs one round trip and one plan."""
    return [list(column) for column in zip(*rows, strict=True)]


def _merge_postgresql(
    driver: Any, keys: list[RollupKey], rows: list[Row], deltas: Mapping[RollupKey, RollupDelta]
) -> None:
    with driver.cursor() as cursor:
        cursor.execute(_UPSERT_POSTGRESQL, _arrays(rows), binary=True)
        inserted = set(cursor.fetchall())
        stored = [
            (row, deltas[key])
            for key, row in zip(keys, rows, strict=True)
            if deltas[key].sketch is not None and row[:_KEY_WIDTH] not in inserted
        ]
        if not stored:
            return
        cursor.execute(
            _READ_POSTGRESQL, _arrays([row[:_KEY_WIDTH] for row, _ in stored]), binary=True
        )
        merged = [
            _merged(stored[position - 1][0], values, stored[position - 1][1])
            for position, *values in cursor.fetchall()
        ]
        cursor.execute(_REPLACE_POSTGRESQL, _arrays(merged), binary=True)


# The level is CHAR(1): bpchar parameters, so that comparisons with it can use the key's index.
_KEY_ARRAYS = "%b::bpchar[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[]"
_VALUE_ARRAYS = (
    "%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::float8[], %b::bigint[], "
    "%b::float8[], %b::bytea[]"
)
_MATCH_KEY = " AND ".join(f"r.{name} = k.{name}" for name in _KEY_COLUMNS)
# unnest keeps the arrays' (sorted) order, so the upsert takes row locks in the global key
# order. A stored sketched row fails the WHERE: it is locked but left alone, and, not being
# returned, is known to need merging; a new one is inserted whole and returned.
_UPSERT_POSTGRESQL = f"""
WITH written AS (
    INSERT INTO {_T} ({", ".join(_COLUMNS)})
    SELECT * FROM unnest({_KEY_ARRAYS}, {_VALUE_ARRAYS})
    {_ADD_SUMS} WHERE excluded.sketch IS NULL
    RETURNING {", ".join(_KEY_COLUMNS)}, sketch IS NOT NULL AS sketched
)
SELECT {", ".join(_KEY_COLUMNS)} FROM written WHERE sketched
"""
# Joined on the whole key: with many rows stored the planner seeks them by index, key by key
# (a test checks), and hashes a table small enough to read whole.
_READ_POSTGRESQL = f"""
SELECT k.position, {", ".join(f"r.{name}" for name in _VALUE_COLUMNS)}
FROM unnest({_KEY_ARRAYS}) WITH ORDINALITY AS k({", ".join(_KEY_COLUMNS)}, position)
JOIN {_T} AS r ON {_MATCH_KEY}
"""
_REPLACE_POSTGRESQL = f"""
UPDATE {_T} AS r SET {", ".join(f"{name} = k.{name}" for name in _VALUE_COLUMNS)}
FROM unnest({_KEY_ARRAYS}, {_VALUE_ARRAYS}) AS k({", ".join(_COLUMNS)})
WHERE {_MATCH_KEY}
"""


_SESSION_COLUMNS = (
    "session_id",
    "user_id",
    "org_id",
    "first_seen",
    "last_seen",
    "ended_at",
    "spans",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost",
)
_SESSION_DOUBLES = (3, 4, 5, 10)
_session_row = itemgetter(*_SESSION_COLUMNS)


def _session_merge(least: str, greatest: str) -> str:
    """The upsert's clause merging a stored session with an incoming one (``excluded``)."""
    s = sessions.name
    return (
        "ON CONFLICT (session_id, org_id) DO UPDATE SET "
        f"user_id = coalesce({s}.user_id, excluded.user_id), "
        f"first_seen = {least}({s}.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}({s}.last_seen, excluded.last_seen), "
        # Either side may be NULL (not ended yet), and SQLite's max() of a NULL is NULL.
        f"ended_at = {greatest}(coalesce({s}.ended_at, excluded.ended_at), "
        f"coalesce(excluded.ended_at, {s}.ended_at)), "
        f"spans = {s}.spans + excluded.spans, errors = {s}.errors + excluded.errors, "
        f"input_tokens = {s}.input_tokens + excluded.input_tokens, "
        f"output_tokens = {s}.output_tokens + excluded.output_tokens, "
        f"cost = {s}.cost + excluded.cost"
    )


def _upsert_sessions(driver: Any, dialect: Dialect, rows: list[dict[str, Any]]) -> None:
    values = list(map(_session_row, rows))
    match dialect:
        case Dialect.SQLITE:
            _executemany_sql(driver, _SESSIONS_SQLITE, values)
        case Dialect.POSTGRESQL:
            columns = _arrays(values)
            # An array takes one type: integers among a double column's values become doubles,
            # as the database stores them (a time or cost given as an integer).
            for position in _SESSION_DOUBLES:
                columns[position] = [None if v is None else float(v) for v in columns[position]]
            with driver.cursor() as cursor:
                cursor.execute(_SESSIONS_POSTGRESQL, columns)
        case _:
            assert_never(dialect)


def _executemany_sql(driver: Any, sql: str, rows: Sequence[Row]) -> None:
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


_SESSION_INSERT = f"INSERT INTO {sessions.name} ({', '.join(_SESSION_COLUMNS)}) "
# SQLite's two-argument min() and max() are its LEAST and GREATEST.
_SESSIONS_SQLITE = (
    _SESSION_INSERT
    + f"VALUES ({', '.join('?' * len(_SESSION_COLUMNS))}) "
    + _session_merge("min", "max")
)
# unnest keeps the rows' (session id, organisation) order, so sessions are locked in one
# global order.
_SESSIONS_POSTGRESQL = (
    _SESSION_INSERT
    + "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[], %b::float8[], "
    "%b::float8[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::float8[]) "
    + _session_merge("least", "greatest")
)
