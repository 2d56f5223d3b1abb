"""``/api/v1/audit``: the audit log, read and exported as JSON lines; never changed.

Super admins read every entry; org admins those of their organisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from watchkeeper.access.audit import AuditAction, AuditEntry, record
from watchkeeper.access.control import AccessControl
from watchkeeper.access.guard import needs
from watchkeeper.access.principal import CurrentPrincipal
from watchkeeper.access.roles import Permission, Role
from watchkeeper.api.params import Limit, text_query, time_range
from watchkeeper.model.query import TimeRange


def router(access: AccessControl) -> APIRouter:
    api = APIRouter(tags=["access"])
    reads = needs(Permission.READ_AUDIT)

    @api.get(
        "/audit",
        response_model=list[AuditEntry],
        summary="Audit entries, newest first",
        openapi_extra=reads,
    )
    def entries(
        principal: CurrentPrincipal,
        window: Annotated[TimeRange, Depends(time_range)],
        action: Annotated[str | None, text_query(64, description="e.g. key.created")] = None,
        limit: Limit = 100,
        before_id: Annotated[
            int | None, Query(ge=1, description="The last id of the previous page.")
        ] = None,
    ) -> list[AuditEntry]:
        return access.audit.entries(
            principal.org_id,
            principal.role is Role.SUPER_ADMIN,
            window.start,
            window.end,
            action,
            limit,
            before_id,
        )

    @api.get(
        "/audit/export",
        summary="Audit entries as JSON lines, newest first",
        openapi_extra=reads,
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    def export(
        principal: CurrentPrincipal,
        request: Request,
        window: Annotated[TimeRange, Depends(time_range)],
    ) -> StreamingResponse:
        everything = principal.role is Role.SUPER_ADMIN
        record(
            request,
            AuditAction.EXPORTED,
            "audit",
            after={"from": window.start.isoformat(), "to": window.end.isoformat()},
        )

        def lines() -> Iterator[bytes]:
            for entry in access.audit.all_entries(
                principal.org_id, everything, window.start, window.end
            ):
                yield orjson.dumps(asdict(entry)) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return api
