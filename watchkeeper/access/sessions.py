"""Dashboard sessions: log in with a key once, then a signed, expiring, HttpOnly cookie.

The cookie holds ``<session id>.<secret>.<expiry>.<signature>``: the signature (HMAC-SHA256
under a secret that every process of the store shares) lets a forged or altered cookie be refused
before the store is asked; the session row (the secret's digest, expiry, revocation) is checked
on every request, so logging out, or revoking the key logged in with, ends the session at once.
The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
it), ``Secure`` over HTTPS, and scoped to Watchkeeper's path.

Changes made with the cookie also need the session's CSRF token in the ``X-Watchkeeper-CSRF``
header: a value derived from the session that only Watchkeeper's own pages can read (it is
returned by the login and ``GET /api/v1/session``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

from watchkeeper.access.directory import KeyDirectory
from watchkeeper.access.keys import ApiKeyAuth
from watchkeeper.access.principal import Principal, Unauthorized
from watchkeeper.access.tokens import matches

COOKIE_NAME = "watchkeeper_session"
CSRF_HEADER = "x-watchkeeper-csrf"
SIGNING_SECRET = "dashboard-session-signing"
SESSION_OVER = "your dashboard session has ended: log in again"


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class LoggedIn:
    principal: Principal
    session_id: str
    csrf_token: str
    expires_at: float


@dataclass
class SessionCookies:
    directory: KeyDirectory
    auth: ApiKeyAuth
    lifetime: float
    _secret: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _signing_secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = self.directory.secret(SIGNING_SECRET)
            return self._secret

    def csrf_token(self, session_id: str) -> str:
        return _sign(self._signing_secret(), "csrf:" + session_id)

    def open(self, principal: Principal) -> tuple[str, LoggedIn]:
        """A new session for ``principal``: the cookie's value and what it stands for."""
        session_id, secret, expires_at = self.directory.open_session(
            principal.key_id, self.lifetime
        )
        payload = f"{session_id}.{secret}.{int(expires_at)}"
        cookie = f"{payload}.{_sign(self._signing_secret(), payload)}"
        return cookie, LoggedIn(principal, session_id, self.csrf_token(session_id), expires_at)

    def resolve(self, cookie: str) -> LoggedIn:
        """The session a cookie stands for; :class:`Unauthorized` if it ended or was forged."""
        parts = cookie.split(".")
        if len(parts) != 4 or not parts[2].isdigit():
            raise Unauthorized(SESSION_OVER)
        session_id, secret, expires, signature = parts
        payload = f"{session_id}.{secret}.{expires}"
        if not hmac.compare_digest(_sign(self._signing_secret(), payload), signature):
            raise Unauthorized(SESSION_OVER)
        now = time.time()
        if int(expires) <= now:
            raise Unauthorized(SESSION_OVER)
        stored = self.directory.session(session_id)
        if (
            stored is None
            or stored.revoked_at is not None
            or stored.expires_at <= now
            or not matches(secret, stored.secret_hash)
        ):
            raise Unauthorized(SESSION_OVER)
        principal = self.auth.bootstrap(stored.key_id)
        if principal is None:
            found = self.directory.find(stored.key_id)
            if found is None:
                raise Unauthorized(SESSION_OVER)
            key = found[0]
            if key.revoked_at is not None or (
                key.expires_at is not None and key.expires_at.timestamp() <= now
            ):
                raise Unauthorized("the key this session logged in with is no longer valid")
            principal = key.principal()
        return LoggedIn(principal, session_id, self.csrf_token(session_id), stored.expires_at)

    def close(self, session_id: str) -> None:
        self.directory.close_session(session_id)
