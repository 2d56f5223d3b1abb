"""``/api/v1/keys``: stored API keys, created, listed, rotated and revoked.

A super admin manages every key; an org admin the keys of their own organisation, and only of
roles no stronger than their own. A new or rotated key's token is in the answer this once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from watchkeeper.access.audit import AuditAction, record
from watchkeeper.access.control import AccessControl
from watchkeeper.access.directory import KeyRequest, StoredKey, key_fields
from watchkeeper.access.guard import needs
from watchkeeper.access.principal import CurrentPrincipal, Forbidden, Principal
from watchkeeper.access.roles import Permission, Role, may_grant
from watchkeeper.api.errors import NotFound

KEY_ID = Annotated[str, Path(pattern="^[0-9a-f]{16}$", description="The key's id.")]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    org_id: str | None = Field(None, min_length=1, max_length=256)
    user_id: str | None = Field(None, min_length=1, max_length=256)
    expires_at: datetime | None = Field(None, description="ISO 8601; none: never expires.")
    rate_limit: int | None = Field(
        None, ge=1, le=1_000_000, description="Requests per minute; none: the role's."
    )


class CreatedKey(BaseModel):
    key: StoredKey
    token: str = Field(description="The key itself: shown this once, never stored.")


def _managed(access: AccessControl, principal: Principal, key_id: str) -> StoredKey:
    """A key this caller manages; 404 for one it may not see, so ids of others don't leak."""
    found = access.directory.find(key_id)
    if found is None or not principal.governs(found[0].org_id):
        raise NotFound(f"no key {key_id}")
    if not may_grant(principal.role, found[0].role):
        raise Forbidden(f"a {principal.role.value} key may not change a {found[0].role} key")
    return found[0]


def router(access: AccessControl) -> APIRouter:
    api = APIRouter(tags=["access"])
    manage = needs(Permission.MANAGE_KEYS)

    @api.get("/keys", response_model=list[StoredKey], summary="Keys", openapi_extra=manage)
    def keys(principal: CurrentPrincipal) -> list[StoredKey]:
        everything = principal.role is Role.SUPER_ADMIN
        return access.directory.keys(principal.org_id, everything=everything)

    @api.post(
        "/keys",
        response_model=CreatedKey,
        status_code=201,
        summary="Create a key (its token is in this answer only)",
        openapi_extra=manage,
    )
    def create(body: KeyIn, principal: CurrentPrincipal, request: Request) -> CreatedKey:
        org_id = body.org_id
        if principal.role is not Role.SUPER_ADMIN:
            if org_id not in (None, principal.org_id):
                raise Forbidden("an org admin creates keys of their own organisation only")
            org_id = principal.org_id
        if not may_grant(principal.role, body.role):
            raise Forbidden(f"a {principal.role.value} key may not create a {body.role} key")
        key_request = KeyRequest(
            body.name, body.role, org_id, body.user_id, body.expires_at, body.rate_limit
        )
        key, token = access.directory.create(key_request, principal.key_id)
        record(
            request,
            AuditAction.KEY_CREATED,
            f"key:{key.key_id}",
            after=key_fields(key),
            org_id=key.org_id,
        )
        return CreatedKey(key=key, token=token)

    @api.post(
        "/keys/{key_id}/rotate",
        response_model=CreatedKey,
        summary="Replace a key by a new one with the same role (the old one stops working)",
        openapi_extra=manage,
    )
    def rotate(key_id: KEY_ID, principal: CurrentPrincipal, request: Request) -> CreatedKey:
        old = _managed(access, principal, key_id)
        key, token = access.directory.rotate(old, principal.key_id)
        record(
            request,
            AuditAction.KEY_ROTATED,
            f"key:{old.key_id}",
            before={"id": old.key_id},
            after={"id": key.key_id, **key_fields(key)},
            org_id=key.org_id,
        )
        return CreatedKey(key=key, token=token)

    @api.delete(
        "/keys/{key_id}",
        response_model=StoredKey,
        summary="Revoke a key (it and its dashboard sessions stop working at once)",
        openapi_extra=manage,
    )
    def revoke(key_id: KEY_ID, principal: CurrentPrincipal, request: Request) -> StoredKey:
        old = _managed(access, principal, key_id)
        key = access.directory.revoke(key_id)
        if key is None:
            raise NotFound(f"no key {key_id}")
        record(
            request,
            AuditAction.KEY_REVOKED,
            f"key:{key_id}",
            before=key_fields(old),
            after=key_fields(key),
            org_id=key.org_id,
        )
        return key

    return api
