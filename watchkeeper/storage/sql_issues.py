"""Issue queries: validation results and error spans grouped for the errors page."""

from __future__ import annotations

from sqlalchemy import desc, false, func, select
from sqlalchemy.engine import Connection

from watchkeeper.model.events import Severity, SpanStatus
from watchkeeper.model.query import Page, Scope, TimeRange
from watchkeeper.model.stored import ErrorGroup, StoredValidation
from watchkeeper.storage.schema import spans, validations
from watchkeeper.storage.sql_queries import (
    MAX_PAGE,
    as_time,
    check_limit,
    fetch_page,
    in_range,
    scoped,
)
from watchkeeper.storage.sql_sessions import stored_validation


def validation_page(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    failed_only: bool,
    severity: Severity | None,
    target: str | None,
    limit: int,
    cursor: str | None,
) -> Page[StoredValidation]:
    query = select(validations).where(
        in_range(validations.c.time, time_range.start_ts, time_range.end_ts),
        *scoped(validations, scope),
    )
    if failed_only:
        query = query.where(validations.c.passed == false())  # "=", so (passed, time) is used
    if severity is not None:
        query = query.where(validations.c.severity == severity.value)
    if target is not None:
        query = query.where(validations.c.target == target)
    rows, next_cursor = fetch_page(
        connection, query, validations.c.time, validations.c.id, limit, cursor
    )
    return Page([stored_validation(row) for row in rows], next_cursor)


def error_groups(
    connection: Connection, time_range: TimeRange, scope: Scope, limit: int
) -> list[ErrorGroup]:
    """Most frequent first; the samples come from the group's most recently stored span.

    A plain GROUP BY joined to one span per group by primary key: during an outage a range can
    hold millions of error spans, and ranking them with a window function would sort them all.
    """
    check_limit(limit, MAX_PAGE)
    occurrences = func.count().label("occurrences")
    last_time = func.max(spans.c.start_time).label("last_time")
    grouped = (
        select(
            spans.c.kind,
            spans.c.name,
            spans.c.error_type,
            occurrences,
            func.min(spans.c.start_time).label("first_time"),
            last_time,
            func.max(spans.c.id).label("sample_id"),
        )
        .where(
            spans.c.status == SpanStatus.ERROR.value,
            in_range(spans.c.start_time, time_range.start_ts, time_range.end_ts),
            *scoped(spans, scope),
        )
        .group_by(spans.c.kind, spans.c.name, spans.c.error_type)
        .order_by(desc(occurrences), desc(last_time), spans.c.kind, spans.c.name)
        .limit(limit)
        .subquery()
    )
    sample = spans.alias("sample")
    query = (
        select(grouped, sample.c.error_message, sample.c.trace_id)
        .join(sample, sample.c.id == grouped.c.sample_id)
        .order_by(
            desc(grouped.c.occurrences), desc(grouped.c.last_time), grouped.c.kind, grouped.c.name
        )
    )
    return [
        ErrorGroup(
            kind=row.kind,
            name=row.name,
            error_type=row.error_type,
            count=row.occurrences,
            first_seen=as_time(row.first_time),
            last_seen=as_time(row.last_time),
            sample_message=row.error_message,
            sample_trace_id=row.trace_id,
        )
        for row in connection.execute(query)
    ]
