"""The store's list queries (spans, traces, metric points) as SQLAlchemy Core; logs are in
:mod:`sql_logs`.

Every filter is a bound parameter. Lists are newest first and paged by an opaque cursor holding
the last row's (time, id), so a page is one index range scan however deep the caller pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    case,
    desc,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.model.query import Page, Scope, SpanFilter, TimeRange, TraceFilter
from watchkeeper.model.stored import StoredMetric, StoredSpan, TraceSummary
from watchkeeper.storage.schema import metric_points, spans

MAX_PAGE = 1_000
"""Most spans or logs in one page; a larger ``limit`` is a :class:`QueryError`, not clamped."""
MAX_METRIC_POINTS = 100_000
_MIN_KEY, _MAX_KEY = -(2**63), 2**63 - 1


def check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise QueryError(f"limit must be between 1 and {maximum}, got {limit}")


def scoped(table: Any, scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if scope.org_id is not None:
        conditions.append(table.c.org_id == scope.org_id)
    if scope.user_id is not None:
        conditions.append(table.c.user_id == scope.user_id)
    return conditions


def in_range(column: Any, start: float, end: float) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def encode_cursor(time: float, key: int | str) -> str:
    return base64.urlsafe_b64encode(f"{time!r}/{key}".encode()).decode()


def decode_cursor(cursor: str, key_type: type[int] | type[str] = int) -> tuple[float, int | str]:
    """The (time, key) in ``cursor``; a text key may itself contain "/", the time never does."""
    try:
        raw = base64.b64decode(cursor, altchars=b"-_", validate=True).decode()
        time_text, key_text = raw.split("/", 1)
        time, key = float(time_text), key_type(key_text)
    except (binascii.Error, ValueError) as exc:
        raise QueryError("invalid cursor: pass back a next_cursor from an earlier page") from exc
    # What no stored row holds: the database would fail on it (an integer beyond 64 bits, a
    # NUL character in text on PostgreSQL) instead of finding nothing.
    if (
        not math.isfinite(time)
        or (isinstance(key, int) and not _MIN_KEY <= key <= _MAX_KEY)
        or (isinstance(key, str) and "\x00" in key)
    ):
        raise QueryError("invalid cursor: pass back a next_cursor from an earlier page")
    return time, key


def fetch_page(
    connection: Connection,
    query: Select[Any],
    order: Sequence[Any],
    limit: int,
    cursor: str | None,
    key_type: type[int] | type[str] = int,
) -> tuple[Sequence[Row[Any]], str | None]:
    """Newest first by ``order``: a time column, then the key columns that break its ties (of
    ``key_type``). The cursor holds the last row's values of them."""
    check_limit(limit, MAX_PAGE)
    time_column, *key_columns = order
    if cursor is not None:
        query = query.where(_older(order, _cursor_values(cursor, len(key_columns), key_type)))
    query = query.order_by(*(desc(column) for column in order)).limit(limit + 1)
    rows = connection.execute(query).all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]._mapping
    keys = [last[column] for column in key_columns]
    return rows[:limit], encode_cursor(
        last[time_column], keys[0] if len(keys) == 1 else json.dumps(keys)
    )


def _cursor_values(cursor: str, keys: int, key_type: type[int] | type[str]) -> list[Any]:
    """The (time, key, …) in ``cursor``: one key as it is, several as a JSON list."""
    if keys == 1:
        return list(decode_cursor(cursor, key_type))
    time, text = decode_cursor(cursor, str)
    try:
        parts = json.loads(str(text))
    except ValueError:
        parts = None
    # Only what a stored row can hold: a NUL (escaped in JSON) would fail on PostgreSQL.
    if not (
        isinstance(parts, list)
        and len(parts) == keys
        and all(type(part) is key_type for part in parts)
        and not any(isinstance(part, str) and "\x00" in part for part in parts)
    ):
        raise QueryError("invalid cursor: pass back a next_cursor from an earlier page")
    return [time, *parts]


def _older(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after ``values`` in descending ``columns`` order, spelt out as comparisons (not a
    row value) so each store's planner sees a range on the first column."""
    first, *rest = columns
    if not rest:
        return first < values[0]  # type: ignore[no-any-return]
    return or_(first < values[0], and_(first == values[0], _older(rest, values[1:])))


def parse_json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def as_time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def stored_span(row: Row[Any]) -> StoredSpan:
    values = row._mapping
    return StoredSpan(
        trace_id=values["trace_id"],
        span_id=values["span_id"],
        parent_id=values["parent_id"],
        kind=values["kind"],
        name=values["name"],
        operation=values["operation"],
        start=as_time(values["start_time"]),
        duration=values["duration"],
        status=values["status"],
        error_type=values["error_type"],
        error_message=values["error_message"],
        service=values["service"],
        instance=values["instance"],
        user_id=values["user_id"],
        org_id=values["org_id"],
        session_id=values["session_id"],
        model=values["model"],
        input_tokens=values["input_tokens"],
        output_tokens=values["output_tokens"],
        cost=values["cost"],
        attributes=parse_json(values["attributes"]),
    )


def span_page(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    span_filter: SpanFilter,
    limit: int,
    cursor: str | None,
) -> Page[StoredSpan]:
    query = select(spans).where(
        in_range(spans.c.start_time, time_range.start_ts, time_range.end_ts),
        *scoped(spans, scope),
    )
    wanted: tuple[tuple[Any, str | None], ...] = (
        (spans.c.kind, span_filter.kind and span_filter.kind.value),
        (spans.c.name, span_filter.name),
        (spans.c.status, span_filter.status and span_filter.status.value),
        (spans.c.user_id, span_filter.user_id),
        (spans.c.org_id, span_filter.org_id),
        (spans.c.session_id, span_filter.session_id),
        (spans.c.trace_id, span_filter.trace_id and span_filter.trace_id.lower()),
    )
    query = query.where(*(column == value for column, value in wanted if value is not None))
    rows, next_cursor = fetch_page(
        connection, query, (spans.c.start_time, spans.c.id), limit, cursor
    )
    return Page([stored_span(row) for row in rows], next_cursor)


def trace(connection: Connection, trace_id: str, scope: Scope) -> list[StoredSpan]:
    query = (
        select(spans)
        .where(spans.c.trace_id == trace_id.lower(), *scoped(spans, scope))
        .order_by(spans.c.start_time, spans.c.id)
    )
    return [stored_span(row) for row in connection.execute(query)]


ENTRY_KINDS = (SpanKind.REQUEST.value, SpanKind.WEBSOCKET.value)
"""Spans that start a trace's work in a service even when they have a (remote) parent."""


def trace_page(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    trace_filter: TraceFilter,
    limit: int,
    cursor: str | None,
) -> Page[TraceSummary]:
    """Entry spans newest first (one index range scan), then one grouped read of their traces.

    A trace's entry span is a request or WebSocket span, or a span without a parent; a trace
    that crossed two instrumented services has one entry per service.
    """
    query = select(spans).where(
        in_range(spans.c.start_time, time_range.start_ts, time_range.end_ts),
        or_(spans.c.parent_id.is_(None), spans.c.kind.in_(ENTRY_KINDS)),
        *scoped(spans, scope),
    )
    wanted: tuple[tuple[Any, str | None], ...] = (
        (spans.c.trace_id, trace_filter.trace_id and trace_filter.trace_id.lower()),
        (spans.c.user_id, trace_filter.user_id),
        (spans.c.session_id, trace_filter.session_id),
    )
    query = query.where(*(column == value for column, value in wanted if value is not None))
    if trace_filter.kind is not None or trace_filter.name is not None or trace_filter.errors_only:
        member = spans.alias("member")
        conditions = [member.c.trace_id == spans.c.trace_id]
        if trace_filter.kind is not None:
            conditions.append(member.c.kind == trace_filter.kind.value)
        if trace_filter.name is not None:
            conditions.append(member.c.name == trace_filter.name)
        if trace_filter.errors_only:
            conditions.append(member.c.status == SpanStatus.ERROR.value)
        query = query.where(exists().where(*conditions))
    rows, next_cursor = fetch_page(
        connection, query, (spans.c.start_time, spans.c.id), limit, cursor
    )
    totals = _trace_totals(connection, {row.trace_id for row in rows}, scope)
    return Page(
        [
            TraceSummary(
                trace_id=row.trace_id,
                span_id=row.span_id,
                kind=row.kind,
                name=row.name,
                start=as_time(row.start_time),
                duration=row.duration,
                status=row.status,
                user_id=row.user_id,
                org_id=row.org_id,
                session_id=row.session_id,
                **totals.get(row.trace_id, _NO_TOTALS),
            )
            for row in rows
        ],
        next_cursor,
    )


_NO_TOTALS: dict[str, Any] = {"spans": 0, "errors": 0, "cost": 0.0, "cost_unknown": 0}


def _trace_totals(
    connection: Connection, trace_ids: set[str], scope: Scope
) -> dict[str, dict[str, Any]]:
    if not trace_ids:
        return {}
    integration = spans.c.kind == SpanKind.INTEGRATION.value
    unpriced = and_(
        integration,
        spans.c.cost.is_(None),
        or_(
            func.coalesce(spans.c.input_tokens, 0) != 0,
            func.coalesce(spans.c.output_tokens, 0) != 0,
        ),
    )
    query = (
        select(
            spans.c.trace_id,
            func.count(),
            func.sum(case((spans.c.status == SpanStatus.ERROR.value, 1), else_=0)),
            func.coalesce(func.sum(case((integration, spans.c.cost), else_=None)), 0.0),
            func.sum(case((unpriced, 1), else_=0)),
        )
        .where(spans.c.trace_id.in_(sorted(trace_ids)), *scoped(spans, scope))
        .group_by(spans.c.trace_id)
    )
    return {
        trace_id: {
            "spans": int(count),
            "errors": int(errors or 0),
            "cost": float(cost or 0.0),
            "cost_unknown": int(unknown or 0),
        }
        for trace_id, count, errors, cost, unknown in connection.execute(query)
    }


def metric_points_in(
    connection: Connection, time_range: TimeRange, scope: Scope, name: str, limit: int
) -> list[StoredMetric]:
    """Oldest first. Metric points belong to no user, so a user scope sees none."""
    check_limit(limit, MAX_METRIC_POINTS)
    query = select(metric_points).where(
        metric_points.c.name == name,
        in_range(metric_points.c.time, time_range.start_ts, time_range.end_ts),
    )
    if scope.user_id is not None:
        query = query.where(false())
    if scope.org_id is not None:
        query = query.where(metric_points.c.org_id == scope.org_id)
    query = query.order_by(metric_points.c.time, metric_points.c.id).limit(limit)
    return [
        StoredMetric(
            as_time(row.time),
            row.name,
            row.kind,
            row.value,
            row.service,
            row.instance,
            row.org_id,
            parse_json(row.attributes),
        )
        for row in connection.execute(query)
    ]
