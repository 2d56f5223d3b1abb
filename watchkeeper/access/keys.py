"""Authentication: which principal a presented key (or dashboard session) stands for.

The environment's keys (``WATCHKEEPER_API_KEYS``) are super-admin bootstrap keys, compared in
constant time against every configured key, so timing reveals neither a key nor which one
matched. Stored keys (``wk_<id>_<secret>``) are looked up by their id and their SHA-256 digest
compared in constant time; an expired or revoked key is refused. Keys are never logged. A key is
accepted as ``Authorization: Bearer`` or ``X-API-Key`` (for scrapers that cannot send a bearer
token).

Failed attempts are audited, at most :data:`FAILURES_AUDITED_PER_MINUTE` per client address a
minute, so a flood of bad keys cannot flood the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import JSONResponse

from watchkeeper.access.audit import Actor, AuditAction, AuditLog, Outcome
from watchkeeper.access.directory import KeyDirectory
from watchkeeper.access.principal import OPEN_ACCESS, Forbidden, Principal, Unauthorized
from watchkeeper.access.roles import Permission, Role
from watchkeeper.access.tokens import key_id_of, matches
from watchkeeper.config import ConfigurationError, Settings
from watchkeeper.model.errors import StoreUnavailable

__all__ = ["ApiKeyAuth", "Forbidden", "Unauthorized", "presented_key", "unauthorized_response"]

logger = logging.getLogger("watchkeeper")

FAILURES_AUDITED_PER_MINUTE = 10
LAST_USED_EVERY = 60.0
"""Seconds between two writes of a key's last use: a busy key is not a write per request."""
KEY_REQUIRED = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def unauthorized_response(error: Unauthorized) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": 401, "message": error.message}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="watchkeeper"'},
    )


def forbidden_response(error: Forbidden) -> JSONResponse:
    return JSONResponse({"error": {"status": 403, "message": error.message}}, status_code=403)


def bootstrap_key_id(key: bytes) -> str:
    """A stable id for an environment key that reveals nothing of it."""
    return "env:" + hashlib.sha256(key).hexdigest()[:12]


@dataclass
class _FailureThrottle:
    """At most ``per_minute`` audited failures per client address in any minute."""

    per_minute: int
    _seen: dict[str | None, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, client: str | None, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()  # bounded memory under a spray from many addresses
            recent = [at for at in self._seen.get(client, []) if at > now - 60]
            admitted = len(recent) < self.per_minute
            if admitted:
                recent.append(now)
            self._seen[client] = recent
            return admitted


@dataclass(eq=False)
class ApiKeyAuth:
    """Resolves keys to principals. ``enabled=False`` makes it admit everyone (for endpoints
    that are not protected); ``open_access`` admits everyone as a super admin."""

    keys: tuple[bytes, ...]
    open_access: bool
    enabled: bool = True
    directory: KeyDirectory | None = None
    audit: AuditLog | None = None
    _ids: tuple[str, ...] = field(init=False, repr=False)
    _touched: dict[str, float] = field(default_factory=dict, repr=False)
    _failures: _FailureThrottle = field(
        default_factory=lambda: _FailureThrottle(FAILURES_AUDITED_PER_MINUTE), repr=False
    )

    def __post_init__(self) -> None:
        self._ids = tuple(bootstrap_key_id(key) for key in self.keys)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        enabled: bool = True,
        directory: KeyDirectory | None = None,
        audit: AuditLog | None = None,
    ) -> ApiKeyAuth:
        keys = tuple(key.get_secret_value().encode() for key in settings.api_keys)
        if settings.open_access:
            logger.warning(
                "WATCHKEEPER_OPEN_ACCESS is on: the Watchkeeper API, dashboard and protected "
                "endpoints answer WITHOUT an API key. Use this for local development only."
            )
        elif enabled and not keys:
            raise ConfigurationError(
                "WATCHKEEPER_API_KEYS: no API key is configured, so the API and dashboard would "
                "be unusable. Set WATCHKEEPER_API_KEYS='[\"a-long-random-key\"]', or "
                "WATCHKEEPER_OPEN_ACCESS=true for local development."
            )
        return cls(keys, settings.open_access, enabled, directory, audit)

    @property
    def needs_key(self) -> bool:
        return self.enabled and not self.open_access

    def bootstrap(self, key_id: str) -> Principal | None:
        """The environment key with this id, if it is still configured."""
        if key_id not in self._ids:
            return None
        return Principal(key_id, Role.SUPER_ADMIN, "WATCHKEEPER_API_KEYS")

    def authenticate(self, presented: str | None, actor: Actor | None = None) -> Principal:
        """The principal of ``presented``; :class:`Unauthorized` if there is none."""
        if not self.needs_key:
            return OPEN_ACCESS
        if not presented:
            raise Unauthorized(KEY_REQUIRED)
        candidate = presented.encode()
        matched: str | None = None
        for configured, configured_id in zip(self.keys, self._ids, strict=True):
            if hmac.compare_digest(candidate, configured):
                matched = configured_id
        if matched is not None:
            return Principal(matched, Role.SUPER_ADMIN, "WATCHKEEPER_API_KEYS")
        key_id = key_id_of(presented)
        if key_id is None or self.directory is None:
            raise self._failed(actor, None, "the API key is not valid")
        found = self.directory.find(key_id)
        if found is None or not matches(presented, found[1]):
            raise self._failed(actor, key_id, "the API key is not valid")
        key = found[0]
        now = datetime.now(UTC)
        if key.revoked_at is not None:
            raise self._failed(actor, key_id, "the API key has been revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise self._failed(actor, key_id, "the API key has expired")
        principal = key.principal()
        self._note_use(principal, now, actor)
        return principal

    def check(self, presented: str | None, permission: Permission = Permission.READ) -> Principal:
        """Authenticate, then require ``permission`` (:class:`Forbidden` without it)."""
        principal = self.authenticate(presented)
        require(principal, permission)
        return principal

    def __call__(self, request: Request) -> None:
        """A FastAPI dependency for routes that read (health's configuration, resilience)."""
        self.check(
            presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        )

    def dependency(
        self, permission: Permission, audited_as: str | None = None
    ) -> Callable[[Request], Principal]:
        """A FastAPI dependency requiring ``permission``; with ``audited_as``, the resource name
        of a sensitive view, each call that passes is recorded in the audit log as a read of it
        (:meth:`AuditLog.note_read`)."""

        def dependency(request: Request) -> Principal:
            headers = request.headers
            actor = Actor.of(request)
            principal = self.authenticate(
                presented_key(headers.get("authorization"), headers.get("x-api-key")), actor
            )
            require(principal, permission)
            if audited_as is not None and self.audit is not None:
                self.audit.note_read(Actor.of(request, principal), audited_as)
            return principal

        return dependency

    def _note_use(self, principal: Principal, now: datetime, actor: Actor | None) -> None:
        if self.directory is None:
            return
        last = self._touched.get(principal.key_id)
        moment = time.monotonic()
        if last is not None and moment - last < LAST_USED_EVERY:
            return
        self._touched[principal.key_id] = moment
        if self.directory.touch(principal.key_id, now) and self.audit is not None:
            self.audit.write(
                Actor(
                    principal,
                    actor.client if actor else None,
                    actor.user_agent if actor else None,
                    actor.trace_id if actor else None,
                ),
                AuditAction.KEY_FIRST_USED,
                f"key:{principal.key_id}",
            )

    def _failed(self, actor: Actor | None, key_id: str | None, message: str) -> Unauthorized:
        if self.audit is not None and self._failures.admit(
            actor.client if actor else None, time.monotonic()
        ):
            try:
                self.audit.write(
                    actor or Actor(None),
                    AuditAction.AUTHENTICATION_FAILED,
                    f"key:{key_id}" if key_id else None,
                    after={"reason": message},
                    outcome=Outcome.DENIED,
                )
            except StoreUnavailable:
                logger.warning("Watchkeeper could not audit a failed authentication")
        return Unauthorized(message)


def require(principal: Principal, permission: Permission) -> None:
    if not principal.may(permission):
        raise Forbidden(
            f"a {principal.role.value} key may not do this (it needs {permission.value})"
        )


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key_header or None
