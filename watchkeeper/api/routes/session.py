"""``/api/v1/session``: the dashboard's login, who is logged in, and logout.

``POST`` takes a key in its JSON body (never in the URL) and sets the session cookie; ``GET``
says who the caller is and what they may do (the dashboard hides the rest); ``DELETE`` ends the
session, in the store, at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from watchkeeper.access.audit import Actor, AuditAction
from watchkeeper.access.control import AccessControl
from watchkeeper.access.guard import logged_in_session, needs
from watchkeeper.access.keys import require
from watchkeeper.access.principal import CurrentPrincipal, Principal
from watchkeeper.access.roles import GRANTS, Permission, Role
from watchkeeper.access.sessions import COOKIE_NAME, LoggedIn
from watchkeeper.api.schemas import ERROR_RESPONSES

PUBLIC_EXTENSION = {"x-watchkeeper-public": True}


class LoginIn(BaseModel):
    key: str = Field(min_length=1, max_length=512)


class Me(BaseModel):
    key_id: str
    name: str
    role: Role
    org_id: str | None
    user_id: str | None
    permissions: list[Permission]
    csrf_token: str | None = Field(
        None, description="For changes made with the session cookie: send as X-Watchkeeper-CSRF."
    )
    expires_at: datetime | None = None

    @classmethod
    def of(cls, principal: Principal, session: LoggedIn | None) -> Me:
        return cls(
            key_id=principal.key_id,
            name=principal.name,
            role=principal.role,
            org_id=principal.org_id,
            user_id=principal.user_id,
            permissions=sorted(GRANTS[principal.role]),
            csrf_token=session.csrf_token if session else None,
            expires_at=datetime.fromtimestamp(session.expires_at, UTC) if session else None,
        )


def cookie_path(prefix: str) -> str:
    return prefix.rstrip("/") + "/" if prefix else "/"


def guarded(access: AccessControl, prefix: str) -> APIRouter:
    """Who am I, and log out: behind the guard."""
    api = APIRouter(tags=["access"])
    signed_in = needs(Permission.SIGNED_IN)

    @api.get("/session", response_model=Me, summary="Who is calling", openapi_extra=signed_in)
    def me(principal: CurrentPrincipal, request: Request) -> Me:
        return Me.of(principal, logged_in_session(request))

    @api.delete(
        "/session",
        status_code=204,
        summary="Log out: the dashboard session ends now",
        openapi_extra=signed_in,
    )
    def logout(principal: CurrentPrincipal, request: Request, response: Response) -> None:
        session = logged_in_session(request)
        if session is not None:
            access.sessions.close(session.session_id)
            access.audit.write(
                Actor.of(request, principal), AuditAction.LOGOUT, f"session:{session.session_id}"
            )
        response.delete_cookie(
            COOKIE_NAME, path=cookie_path(prefix), httponly=True, samesite="strict"
        )

    return api


def login(access: AccessControl, prefix: str) -> APIRouter:
    """The login itself: the one route taking a key that is not behind the guard."""
    api = APIRouter(tags=["access"], responses=ERROR_RESPONSES)

    @api.post(
        "/session",
        response_model=Me,
        summary="Log in with a key: sets the dashboard's session cookie",
        openapi_extra=PUBLIC_EXTENSION,
    )
    def log_in(body: LoginIn, request: Request, response: Response) -> Me:
        actor = Actor.of(request)
        principal = access.auth.authenticate(body.key, actor)
        require(principal, Permission.READ)
        access.limiter.take(principal)
        cookie, session = access.sessions.open(principal)
        access.audit.write(
            Actor.of(request, principal), AuditAction.LOGIN, f"session:{session.session_id}"
        )
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=int(access.session_lifetime),
            path=cookie_path(prefix),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return Me.of(principal, session)

    return api
