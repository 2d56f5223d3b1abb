"""Failed validations: business issues (errors and logs have routes of their own)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import Cursor, Limit, current_scope, text_query, time_range
from watchkeeper.api.schemas import PageOut
from watchkeeper.model.events import Severity
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import StoredValidation


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["issues"])

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

    return api
