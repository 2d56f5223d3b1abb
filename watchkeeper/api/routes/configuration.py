"""``/api/v1/configuration``: the settings in effect, every secret masked, for super admins.

Each read is audited; the view needs no store, so it is answered while the store is down too
(the gap in the audit log is then logged).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from watchkeeper.access.audit import CONFIGURATION, Actor
from watchkeeper.access.control import AccessControl
from watchkeeper.access.guard import needs
from watchkeeper.access.roles import Permission
from watchkeeper.api.context import ApiContext


def router(context: ApiContext, access: AccessControl) -> APIRouter:
    api = APIRouter(tags=["access"])

    @api.get(
        "/configuration",
        response_model=dict[str, Any],
        summary="The settings in effect, secrets masked (***: set; empty: not set)",
        openapi_extra=needs(Permission.CONFIGURE),
    )
    def configuration(request: Request) -> dict[str, Any]:
        access.audit.note_read(Actor.of(request), CONFIGURATION)
        return context.configuration()

    return api
