"""Error groups: the list with its flags, one group with its stack and samples, its status."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from watchkeeper.access.guard import needs
from watchkeeper.access.roles import Permission
from watchkeeper.api.context import ApiContext
from watchkeeper.api.errors import NotFound
from watchkeeper.api.params import Limit, current_scope, time_range
from watchkeeper.model.error_groups import ErrorFlag, ErrorStatus
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import ErrorGroup, ErrorGroupDetail

GroupId = Annotated[
    str, Path(pattern="^[0-9a-f]{32}$", description="The group's id: 32 hexadecimal digits.")
]


class SettableStatus(StrEnum):
    """What a person may set: ``new`` and ``regressed`` are what Watchkeeper observes."""

    ONGOING = ErrorStatus.ONGOING.value
    RESOLVED = ErrorStatus.RESOLVED.value
    IGNORED = ErrorStatus.IGNORED.value


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SettableStatus


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["errors"])

    @api.get(
        "/errors",
        response_model=list[ErrorGroup],
        summary="Error groups seen in the range, most frequent first, with their flags",
    )
    def errors(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        status: ErrorStatus | None = None,
        flag: ErrorFlag | None = None,
    ) -> list[ErrorGroup]:
        return context.store.error_groups(window, scope, limit, status, flag)

    @api.get(
        "/errors/{group_id}",
        response_model=ErrorGroupDetail,
        summary="One error group: its figures over the range, stack and recent samples",
    )
    def error_group(
        group_id: GroupId,
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> ErrorGroupDetail:
        return _found(context, group_id, window, scope)

    @api.patch(
        "/errors/{group_id}",
        response_model=ErrorGroupDetail,
        summary="Set an error group's status: ongoing, resolved or ignored",
        openapi_extra=needs(Permission.ACKNOWLEDGE),
    )
    def set_status(
        group_id: GroupId,
        change: StatusChange,
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> ErrorGroupDetail:
        _found(context, group_id, window, scope)  # only a group the caller may see
        if not context.store.set_error_status(group_id, ErrorStatus(change.status), time.time()):
            raise NotFound(f"no error group {group_id} is stored")
        return _found(context, group_id, window, scope)

    return api


def _found(context: ApiContext, group_id: str, window: TimeRange, scope: Scope) -> ErrorGroupDetail:
    detail = context.store.error_group(group_id, window, scope)
    if detail is None:
        raise NotFound(f"no error group {group_id} is stored (it may be older than the retention)")
    return detail
