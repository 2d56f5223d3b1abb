"""The guard in front of every protected route: who is calling, may they, and not too often.

A route says what it needs with ``openapi_extra=needs(Permission.X)``; the need is also in the
OpenAPI document (``x-watchkeeper-permission``), where the authorisation test reads it. A route
that says nothing needs :attr:`Permission.READ` when it only reads (GET, HEAD) and
:attr:`Permission.CONFIGURE` (super admins) when it changes anything: a new route is never
more open than that by accident.

The caller is found from ``Authorization: Bearer``/``X-API-Key``, else from the dashboard's
session cookie; a change made with the cookie must carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from watchkeeper.access.audit import AUDIT_STATE, Actor, AuditLog
from watchkeeper.access.keys import ApiKeyAuth, presented_key, require
from watchkeeper.access.limits import KeyRateLimiter
from watchkeeper.access.principal import PRINCIPAL_STATE, Forbidden, Principal, Unauthorized
from watchkeeper.access.roles import Permission
from watchkeeper.access.sessions import COOKIE_NAME, CSRF_HEADER, LoggedIn, SessionCookies

PERMISSION_EXTENSION = "x-watchkeeper-permission"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_STATE = "watchkeeper_session"


def needs(permission: Permission) -> dict[str, Any]:
    """``openapi_extra`` for a route: the permission its callers need."""
    return {PERMISSION_EXTENSION: permission.value}


def route_permission(method: str, openapi_extra: dict[str, Any] | None) -> Permission:
    declared = (openapi_extra or {}).get(PERMISSION_EXTENSION)
    if declared is not None:
        return Permission(declared)
    return Permission.READ if method.upper() in SAFE_METHODS else Permission.CONFIGURE


@dataclass(frozen=True, eq=False)
class Guard:
    """A FastAPI dependency for routers: authenticates, authorises and counts each request."""

    auth: ApiKeyAuth
    limiter: KeyRateLimiter
    audit: AuditLog | None = None
    sessions: SessionCookies | None = None

    def identify(self, request: Request) -> tuple[Principal, LoggedIn | None]:
        """The caller from a key header, else the session cookie (:class:`Unauthorized`)."""
        key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        cookie = request.cookies.get(COOKIE_NAME)
        if key is None and cookie and self.sessions is not None and self.auth.needs_key:
            logged_in = self.sessions.resolve(cookie)
            return logged_in.principal, logged_in
        return self.auth.authenticate(key, Actor.of(request)), None

    def __call__(self, request: Request) -> Principal:
        principal, logged_in = self.identify(request)
        route = request.scope.get("route")
        permission = route_permission(request.method, getattr(route, "openapi_extra", None))
        require(principal, permission)
        if logged_in is not None and request.method not in SAFE_METHODS:
            token = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(token.encode(), logged_in.csrf_token.encode()):
                raise Forbidden(
                    "a change made with the dashboard's session needs its CSRF token in the "
                    "X-Watchkeeper-CSRF header"
                )
        self.limiter.take(principal)
        setattr(request.state, PRINCIPAL_STATE, principal)
        setattr(request.state, SESSION_STATE, logged_in)
        if self.audit is not None:
            setattr(request.state, AUDIT_STATE, self.audit)
        return principal


def logged_in_session(request: Request) -> LoggedIn | None:
    found = getattr(request.state, SESSION_STATE, None)
    return found if isinstance(found, LoggedIn) else None


__all__ = ["Guard", "Unauthorized", "logged_in_session", "needs", "route_permission"]
