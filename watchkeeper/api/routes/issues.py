"""What went wrong: grouped errors, failed validations (business issues) and logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import Cursor, Limit, current_scope, text_query, time_range
from watchkeeper.api.schemas import PageOut
from watchkeeper.model.events import LogLevel, Severity
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import ErrorGroup, StoredLog, StoredValidation


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["issues"])

    @api.get("/errors", response_model=list[ErrorGroup], summary="Errors grouped by type")
    def errors(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
    ) -> list[ErrorGroup]:
        return context.store.error_groups(window, scope, limit)

    @api.get(
        "/validations",
        response_model=PageOut[StoredValidation],
        summary="Validation results; failed ones are business issues",
    )
    def validations(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        failed_only: bool = True,
        severity: Severity | None = None,
        target: Annotated[str | None, text_query(512)] = None,
    ) -> PageOut[StoredValidation]:
        return PageOut.of(
            context.store.validations(window, scope, failed_only, severity, target, limit, cursor)
        )

    @api.get("/logs", response_model=PageOut[StoredLog], summary="Log search, newest first")
    def logs(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        level: LogLevel = LogLevel.DEBUG,
        text: Annotated[str | None, text_query(512)] = None,
        trace_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    ) -> PageOut[StoredLog]:
        return PageOut.of(
            context.store.logs(window, scope, int(level), text, trace_id, limit, cursor)
        )

    return api
