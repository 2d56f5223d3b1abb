"""Issue queries: validation results (error groups are in :mod:`sql_error_groups`)."""

from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.engine import Connection

from watchkeeper.model.events import Severity
from watchkeeper.model.query import Page, Scope, TimeRange
from watchkeeper.model.stored import StoredValidation
from watchkeeper.storage.schema import validations
from watchkeeper.storage.sql_queries import fetch_page, in_range, scoped
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
    order = (validations.c.time, validations.c.id)
    rows, next_cursor = fetch_page(connection, query, order, limit, cursor)
    return Page([stored_validation(row) for row in rows], next_cursor)
