"""Poison batches: NULs are stripped, bad values reject the batch, outages stay retryable."""

from __future__ import annotations

import secrets
import sqlite3
import traceback
from datetime import UTC, datetime

import psycopg
import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError as WrappedOperationalError

from tests.support.stores import T0, StoreTarget, batch_of, span
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.model.events import (
    LogLevel,
    LogRecord,
    SessionMark,
    Severity,
    Snapshot,
    ValidationResult,
)
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.model.rollups import Dimension
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.errors import WRITE_ERRORS, is_rejection
from watchkeeper.storage.rows import IDENTITY_LIMIT, RAW_TABLES, PreparedBatch, session_rows
from watchkeeper.storage.sql_store import SqlStore
from watchkeeper.storage.sql_writer import write_batch

EVERYTHING = Scope.everything()
HOUR = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC))


def test_nul_characters_are_stripped_from_every_text_value(store: SqlStore) -> None:
    spans = [
        span(T0 + 1, name="GET /it\x00ems", user_id="u\x001", org_id="o1", session_id="s\x001",
             error=True, error_type="Bad\x00", error_message="nul \x00 here", model="m\x00",
             attributes={"k": "v\x00"}),
        # Becomes the same rollup key and session as the span above once stripped.
        span(T0 + 2, name="GET /items", user_id="u1", org_id="o1", session_id="s1"),
    ]  # fmt: skip
    store.write(batch_of(
        spans,
        logs=[LogRecord(T0 + 3, LogLevel.INFO, "ap\x00p", "hel\x00lo", user_id="u\x001")],
        snapshots=[Snapshot(T0 + 4, "sn\x00ap", {"a\x00": "b\x00"}, session_id="s\x001",
                            org_id="o1")],
        validations=[ValidationResult(T0 + 5, "v\x00", "t\x00", False, "obs\x00erved", "ex\x00",
                                      Severity.ERROR, "m\x00", session_id="s1", org_id="o1")],
        session_marks=[SessionMark(T0 + 6, "s\x001", ended=True, org_id="o1")],
    ))  # fmt: skip

    stored = store.spans(HOUR, EVERYTHING).items
    assert {s.name for s in stored} == {"GET /items"}
    assert {s.user_id for s in stored} == {"u1"}
    error = next(s for s in stored if s.status == "error")
    assert (error.error_type, error.error_message, error.model) == ("Bad", "nul  here", "m")
    assert error.attributes == {"k": "v\x00"}  # JSON keeps it, escaped as \u0000
    (summary,) = store.overview(HOUR, EVERYTHING)
    assert (summary.name, summary.count) == ("GET /items", 2)
    assert [row.value for row in store.usage(HOUR, EVERYTHING, Dimension.USER)] == ["u1"]
    (log,) = store.logs(HOUR, EVERYTHING).items
    assert (log.logger, log.message, log.user_id) == ("app", "hello", "u1")

    (session,) = store.sessions(HOUR, EVERYTHING).items
    assert (session.session_id, session.user_id, session.spans) == ("s1", "u1", 2)
    assert session.ended
    detail = store.session("s1", EVERYTHING)
    assert detail is not None
    assert [(s.name, s.data) for s in detail.snapshots] == [("snap", {"a\x00": "b\x00"})]
    (result,) = detail.validations
    assert (result.validator, result.target, result.observed) == ("v", "t", "observed")
    assert (result.expected, result.message) == ("ex", "m")


def test_an_out_of_range_value_rejects_the_batch_and_stores_nothing(store: SqlStore) -> None:
    good = [span(T0 + i, session_id="s1") for i in range(5)]
    huge = span(T0 + 9, input_tokens=2**64)  # more than a 64-bit column holds

    with pytest.raises(BatchRejected, match="could not write a batch of 6 events") as raised:
        store.write(batch_of([*good, huge]))

    assert not isinstance(raised.value, StoreUnavailable)
    for table in RetainedTable:
        assert store.count(table) == 0, table
    store.write(batch_of(good))  # the store itself is fine
    assert store.count(RetainedTable.SPANS) == 5


def test_a_malformed_event_rejects_the_batch(store: SqlStore) -> None:
    log = LogRecord(T0, "loud", "app", "x")  # type: ignore[arg-type]
    with pytest.raises(BatchRejected, match="malformed event: ValueError"):
        store.write(batch_of([], logs=[log]))


def test_an_over_long_trace_id_is_rejected_on_postgresql(store: SqlStore) -> None:
    if store.dialect is not Dialect.POSTGRESQL:
        pytest.skip("SQLite does not enforce CHAR lengths")
    with pytest.raises(BatchRejected, match="StringDataRightTruncation"):
        store.write(batch_of([span(T0, trace_id=2**140)]))


def test_a_value_too_large_to_index_is_rejected_on_postgresql(store: SqlStore) -> None:
    if store.dialect is not Dialect.POSTGRESQL:
        pytest.skip("SQLite indexes values of any size")
    # Random text does not compress below the btree limit (psycopg files this under
    # OperationalError; it is still the data's fault).
    with pytest.raises(BatchRejected, match="ProgramLimitExceeded"):
        store.write(batch_of([span(T0, name=secrets.token_urlsafe(20_000))]))


def test_a_locked_sqlite_file_is_unavailable_not_rejected(store: SqlStore) -> None:
    if store.dialect is not Dialect.SQLITE:
        pytest.skip("SQLite's file lock")
    blocker = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.write(batch_of([span(T0)]))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.write(batch_of([span(T0)]))
    assert store.count(RetainedTable.SPANS) == 1


@pytest.mark.postgres
def test_an_unreachable_postgresql_is_unavailable_not_rejected() -> None:
    store = SqlStore(StoreTarget("postgresql+psycopg://postgres@127.0.0.1:1/test").engine())
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.write(batch_of([span(T0)]))
        assert not isinstance(raised.value, BatchRejected)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("error", "rejected"),
    [
        (psycopg.errors.NumericValueOutOfRange("bigint out of range"), True),
        (psycopg.errors.StringDataRightTruncation("value too long"), True),
        (psycopg.errors.CharacterNotInRepertoire("invalid byte sequence"), True),
        (psycopg.errors.NotNullViolation("null value"), True),
        (psycopg.errors.ProgramLimitExceeded("index row size"), True),
        (psycopg.ProgrammingError("cannot adapt type 'dict'"), True),
        (psycopg.OperationalError("connection refused"), False),
        (psycopg.InterfaceError("the connection is closed"), False),
        (psycopg.errors.ConnectionTimeout("timed out"), False),
        (psycopg.errors.QueryCanceled("statement timeout"), False),
        (psycopg.errors.LockNotAvailable("lock timeout"), False),
        (psycopg.errors.SerializationFailure("could not serialize"), False),
        (psycopg.errors.DeadlockDetected("deadlock"), False),
        (psycopg.errors.AdminShutdown("terminating connection"), False),
        (psycopg.errors.DiskFull("no space"), False),
        (psycopg.errors.UndefinedTable("no such table"), False),
        (psycopg.errors.InsufficientPrivilege("denied"), False),
        (sqlite3.OperationalError("database is locked"), False),
        (sqlite3.OperationalError("disk I/O error"), False),
        (sqlite3.DatabaseError("file is not a database"), False),
        (sqlite3.IntegrityError("NOT NULL constraint failed"), True),
        (sqlite3.DataError("string or blob too big"), True),
        (sqlite3.InterfaceError("Error binding parameter 1"), True),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), True),
        (WrappedOperationalError("INSERT", {}, sqlite3.OperationalError("locked")), False),
        (TimeoutError("timed out"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_errors_are_classified_by_cause(error: BaseException, rejected: bool) -> None:
    assert is_rejection(error) is rejected


def _unclean(batch: Batch) -> PreparedBatch:
    """The batch's rows as they were before cleaning: what the drivers themselves refuse."""
    raw = [(table, table.build(batch)) for table in RAW_TABLES]
    sessions = [
        {**row, "session_id": batch.spans[0].session_id} for row in session_rows(batch.sessions)
    ]
    raw_rows = [(table, rows) for table, rows in raw if rows]
    return PreparedBatch(raw_rows, batch.rollups, sessions, [])


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": "a\ud800b", "session_id": "s\ud800"},  # UnicodeEncodeError, raw
        {"user_id": "a\x00b", "session_id": "s1"},  # PostgreSQL: psycopg's DataError
        {"user_id": "u" * 20_000, "session_id": "s1"},  # PostgreSQL: index row too large (54000)
        {"input_tokens": 2**64, "session_id": "s1"},  # OverflowError; PostgreSQL: 22003
    ],
    ids=["surrogate", "nul", "long", "bigint"],
)
def test_what_drivers_raise_for_unstorable_values_is_a_rejection(
    store: SqlStore, fields: dict[str, object]
) -> None:
    """Over COPY or executemany (raw rows), the rollup statements and the session upsert."""
    batch = batch_of([span(T0, **fields)])
    prepared = _unclean(batch)
    parts = [
        PreparedBatch(prepared.raw, {}, [], []),
        PreparedBatch([], prepared.rollups, [], []),
        PreparedBatch([], {}, prepared.sessions, []),
    ]
    for part in parts:
        error = _attempt(store, part)
        assert error is None or is_rejection(error), repr(error)


def _attempt(store: SqlStore, batch: PreparedBatch) -> BaseException | None:
    try:
        with write_transaction(store.engine) as connection:
            write_batch(connection, store.dialect, batch)
    except WRITE_ERRORS as error:
        return error
    return None


def test_a_rejection_names_the_error_class_never_the_values(store: SqlStore) -> None:
    secret, user = 2**64 + 4242, "-".join(("secret", "user"))  # not in this source, either
    with pytest.raises(BatchRejected) as raised:
        store.write(batch_of([span(T0, input_tokens=secret, user_id=user)]))
    error = raised.value
    assert str(secret) not in str(error)
    assert "could not write a batch of 1 event (1 span): " in str(error)
    # No chain to SQLAlchemy's error, whose text lists the parameters, for a logged traceback.
    assert error.__cause__ is None
    assert error.__suppress_context__
    printed = "".join(traceback.format_exception(error))
    assert str(secret) not in printed
    assert user not in printed


def test_a_malformed_event_is_named_by_its_error_class_only(store: SqlStore) -> None:
    log = LogRecord(T0, "secret-level", "app", "x")  # type: ignore[arg-type]
    with pytest.raises(BatchRejected) as raised:
        store.write(batch_of([], logs=[log]))
    assert "secret-level" not in "".join(traceback.format_exception(raised.value))


def test_identity_values_are_cut_alike_everywhere_keeping_distinct_ids_distinct(
    store: SqlStore,
) -> None:
    one, two = "u" * 1000 + "1", "u" * 1000 + "2"
    store.write(batch_of([span(T0, user_id=one, session_id=one), span(T0, user_id=two)]))
    users = sorted(row.value for row in store.usage(HOUR, EVERYTHING, Dimension.USER))
    stored = sorted(s.user_id or "" for s in store.spans(HOUR, EVERYTHING).items)
    assert users == stored
    assert len(set(users)) == 2
    assert all(len(user) == IDENTITY_LIMIT and "…" in user for user in users)
    (session,) = store.sessions(HOUR, EVERYTHING).items
    assert session.session_id in users
