"""Session queries: the sessions list and one session's timeline (spans, snapshots, validations).

A session row holds totals merged by the writer, so the list never aggregates spans. A session
is its id within its organisation: the timeline reads each table through its (session_id, time)
index and keeps the rows of the session's organisation only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, Table, desc, func, or_, select
from sqlalchemy.engine import Connection

from watchkeeper.model.query import Page, Scope, TimeRange
from watchkeeper.model.stored import SessionDetail, StoredSession, StoredSnapshot, StoredValidation
from watchkeeper.storage.schema import NO_ORGANISATION, sessions, snapshots, spans, validations
from watchkeeper.storage.sql_queries import (
    as_time,
    fetch_page,
    in_range,
    parse_json,
    scoped,
    stored_span,
)

MAX_TIMELINE = 5_000
"""Most spans, snapshots or validations one session detail returns of each."""


def _stored_session(row: Row[Any]) -> StoredSession:
    return StoredSession(
        session_id=row.session_id,
        user_id=row.user_id,
        org_id=row.org_id or None,
        first_seen=as_time(row.first_seen),
        last_seen=as_time(row.last_seen),
        ended_at=None if row.ended_at is None else as_time(row.ended_at),
        spans=row.spans,
        errors=row.errors,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
    )


def _starts_with(column: Any, prefix: str) -> Any:
    # substr() rather than LIKE: case-sensitive in both databases and no wildcards to escape.
    return func.substr(column, 1, len(prefix)) == prefix


def session_page(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    search: str | None,
    limit: int,
    cursor: str | None,
) -> Page[StoredSession]:
    query = select(sessions).where(
        in_range(sessions.c.last_seen, time_range.start_ts, time_range.end_ts),
        *scoped(sessions, scope),
    )
    if search:
        query = query.where(
            or_(
                _starts_with(sessions.c.session_id, search),
                _starts_with(sessions.c.user_id, search),
            )
        )
    # Newest first by (last_seen, session id, organisation): two organisations' equal ids
    # seen at one instant are two rows, and the cursor holds all three to page between them.
    order = (sessions.c.last_seen, sessions.c.session_id, sessions.c.org_id)
    rows, next_cursor = fetch_page(connection, query, order, limit, cursor, str)
    return Page([_stored_session(row) for row in rows], next_cursor)


def stored_snapshot(row: Row[Any]) -> StoredSnapshot:
    return StoredSnapshot(
        time=as_time(row.time),
        name=row.name,
        data=parse_json(row.data),
        trace_id=row.trace_id,
        span_id=row.span_id,
        session_id=row.session_id,
        user_id=row.user_id,
        org_id=row.org_id,
    )


def stored_validation(row: Row[Any]) -> StoredValidation:
    return StoredValidation(
        time=as_time(row.time),
        validator=row.validator,
        target=row.target,
        passed=bool(row.passed),
        observed=row.observed_number if row.observed_text is None else row.observed_text,
        expected=row.expected,
        severity=row.severity,
        message=row.message,
        trace_id=row.trace_id,
        span_id=row.span_id,
        session_id=row.session_id,
        user_id=row.user_id,
        org_id=row.org_id,
    )


def _of_organisation(table: Table, org_id: str) -> ColumnElement[bool]:
    if org_id == NO_ORGANISATION:
        return or_(table.c.org_id.is_(None), table.c.org_id == NO_ORGANISATION)
    return table.c.org_id == org_id


def _timeline(
    connection: Connection, table: Table, time_column: Any, session: Row[Any], scope: Scope
) -> list[Row[Any]]:
    """Oldest first, one row past the cap so the caller can tell the list was cut."""
    query = (
        select(table)
        .where(
            table.c.session_id == session.session_id,
            _of_organisation(table, session.org_id),
            *scoped(table, scope),
        )
        .order_by(time_column, table.c.id)
        .limit(MAX_TIMELINE + 1)
    )
    return list(connection.execute(query).all())


def session_detail(connection: Connection, session_id: str, scope: Scope) -> SessionDetail | None:
    """``None`` when the session does not exist or lies outside ``scope``.

    Where the id is one session in several organisations the scope lets the caller see (a super
    admin's), the one seen last is the answer; a caller names another by narrowing the scope to
    its organisation. The scope is applied to every table too, not only to the session row: a
    session's spans normally share its user, and if one did not, access control must still hold.
    """
    row = connection.execute(
        select(sessions)
        .where(sessions.c.session_id == session_id, *scoped(sessions, scope))
        .order_by(desc(sessions.c.last_seen), sessions.c.org_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    span_rows = _timeline(connection, spans, spans.c.start_time, row, scope)
    snapshot_rows = _timeline(connection, snapshots, snapshots.c.time, row, scope)
    validation_rows = _timeline(connection, validations, validations.c.time, row, scope)
    truncated = any(
        len(rows) > MAX_TIMELINE for rows in (span_rows, snapshot_rows, validation_rows)
    )
    return SessionDetail(
        session=_stored_session(row),
        spans=[stored_span(r) for r in span_rows[:MAX_TIMELINE]],
        snapshots=[stored_snapshot(r) for r in snapshot_rows[:MAX_TIMELINE]],
        validations=[stored_validation(r) for r in validation_rows[:MAX_TIMELINE]],
        truncated=truncated,
    )
