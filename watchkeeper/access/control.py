"""Access control assembled for one runtime: keys, sessions, rate limits, the audit log, and the
guard the API's routers stand behind."""

from __future__ import annotations

from dataclasses import dataclass

from watchkeeper.access.audit import AuditLog
from watchkeeper.access.directory import KeyDirectory
from watchkeeper.access.guard import Guard
from watchkeeper.access.keys import ApiKeyAuth
from watchkeeper.access.limits import KeyRateLimiter
from watchkeeper.access.sessions import SessionCookies
from watchkeeper.config import Settings
from watchkeeper.storage.handle import StoreHandle


@dataclass(frozen=True, eq=False)
class AccessControl:
    auth: ApiKeyAuth
    directory: KeyDirectory
    audit: AuditLog
    limiter: KeyRateLimiter
    sessions: SessionCookies
    guard: Guard
    session_lifetime: float

    @classmethod
    def build(cls, settings: Settings, stores: StoreHandle) -> AccessControl:
        directory = KeyDirectory(stores.current)
        audit = AuditLog.for_settings(settings, stores.current)
        auth = ApiKeyAuth.from_settings(settings, directory=directory, audit=audit)
        limiter = KeyRateLimiter(settings)
        lifetime = float(settings.dashboard_session_seconds)
        sessions = SessionCookies(directory, auth, lifetime)
        guard = Guard(auth, limiter, audit, sessions)
        return cls(auth, directory, audit, limiter, sessions, guard, lifetime)
