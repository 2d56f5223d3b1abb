"""Stored API keys and dashboard sessions, in the store's own database.

Every change is its own short write transaction, taken on the caller's thread: key changes are
rare and must be durable before the caller is told they happened. A store that is not SQL (a
test's memory sink) has no directory: only the environment's keys work then.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Row, insert, select, update

from watchkeeper.access.principal import Principal
from watchkeeper.access.roles import Role
from watchkeeper.access.tokens import digest, new_key_id, new_token
from watchkeeper.model.errors import QueryError, StoreUnavailable
from watchkeeper.model.store import Store
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.errors import DATABASE_ERRORS
from watchkeeper.storage.schema import access_secrets, api_keys, dashboard_sessions
from watchkeeper.storage.sql_store import SqlStore

MAX_NAME = 200
MAX_IDENTITY = 256


class NoKeyStore(StoreUnavailable):
    """The store is not a database: keys cannot be stored."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A stored key as shown: never its secret, which is shown once, when it is made."""

    key_id: str
    name: str
    role: Role
    org_id: str | None
    user_id: str | None
    rate_limit: int | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def principal(self) -> Principal:
        return Principal(
            self.key_id, self.role, self.name, self.org_id, self.user_id, self.rate_limit
        )


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """What a new key is to be."""

    name: str
    role: Role
    org_id: str | None = None
    user_id: str | None = None
    expires_at: datetime | None = None
    rate_limit: int | None = None

    def check(self) -> None:
        """Bad requests fail with :class:`QueryError` (a 400) saying what is wrong."""
        if not self.name.strip() or len(self.name) > MAX_NAME:
            raise QueryError(f"a key needs a name of 1 to {MAX_NAME} characters")
        for label, value in (("org_id", self.org_id), ("user_id", self.user_id)):
            if value is not None and (not value or len(value) > MAX_IDENTITY or "\x00" in value):
                raise QueryError(f"{label} must be 1 to {MAX_IDENTITY} characters, without NUL")
        if self.role in (Role.ORG_ADMIN, Role.USER) and self.org_id is None:
            raise QueryError(f"a {self.role.value} key needs an organisation (org_id)")
        if self.role is Role.USER and self.user_id is None:
            raise QueryError("a user key needs a user id (user_id)")
        if self.role is Role.SUPER_ADMIN and (self.org_id or self.user_id):
            raise QueryError("a super_admin key sees every organisation: give it no org_id")
        if self.role is not Role.USER and self.user_id is not None:
            raise QueryError("only a user key has a user id")
        if self.rate_limit is not None and not 1 <= self.rate_limit <= 1_000_000:
            raise QueryError("rate_limit must be 1 to 1000000 requests a minute")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise QueryError("expires_at must be in the future")


@dataclass(frozen=True, slots=True)
class DashboardSession:
    session_id: str
    secret_hash: str
    key_id: str
    expires_at: float
    revoked_at: float | None


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _stamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _key(row: Row[Any]) -> StoredKey:
    return StoredKey(
        key_id=row.key_id,
        name=row.name,
        role=Role(row.role),
        org_id=row.org_id,
        user_id=row.user_id,
        rate_limit=row.rate_limit,
        created_at=datetime.fromtimestamp(row.created_at, UTC),
        created_by=row.created_by,
        last_used_at=_time(row.last_used_at),
        expires_at=_time(row.expires_at),
        revoked_at=_time(row.revoked_at),
    )


class KeyDirectory:
    """Keys and dashboard sessions of the process's store."""

    def __init__(self, current: Callable[[], Store]) -> None:
        self._current = current

    def _engine(self) -> Engine:
        store = self._current()
        if not isinstance(store, SqlStore):
            raise NoKeyStore("this store keeps no keys: only WATCHKEEPER_API_KEYS work")
        return store.engine

    @property
    def available(self) -> bool:
        try:
            self._engine()
        except StoreUnavailable:
            return False
        return True

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self._engine().connect() as connection:
                yield connection
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"could not read keys: {type(error).__name__}") from None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        try:
            with write_transaction(self._engine()) as connection:
                yield connection
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"could not write keys: {type(error).__name__}") from None

    # -- keys -------------------------------------------------------------------------------

    def create(self, request: KeyRequest, created_by: str | None) -> tuple[StoredKey, str]:
        """A new key and its token, which is shown this once and stored only as a digest."""
        request.check()
        key_id = new_key_id()
        token = new_token(key_id)
        now = datetime.now(UTC)
        key = StoredKey(
            key_id,
            request.name.strip(),
            request.role,
            request.org_id,
            request.user_id,
            request.rate_limit,
            now,
            created_by,
            None,
            request.expires_at,
            None,
        )
        with self._writing() as connection:
            connection.execute(_key_row(key, token))
        return key, token

    def find(self, key_id: str) -> tuple[StoredKey, str] | None:
        """A key and its token's digest."""
        with self._reading() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else (_key(row), row.secret_hash)

    def keys(self, org_id: str | None = None, everything: bool = False) -> list[StoredKey]:
        """Newest first: every key (``everything``), or those of one organisation."""
        query = select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.key_id)
        if not everything:
            query = query.where(api_keys.c.org_id == org_id)
        with self._reading() as connection:
            return [_key(row) for row in connection.execute(query)]

    def revoke(self, key_id: str) -> StoredKey | None:
        """Revoke a key (and so its dashboard sessions); ``None`` if there is no such key."""
        now = datetime.now(UTC).timestamp()
        with self._writing() as connection:
            connection.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = connection.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else _key(row)

    def rotate(self, old: StoredKey, created_by: str | None) -> tuple[StoredKey, str]:
        """A new key with the old one's name, role, organisation, user, limit and expiry; the
        old one is revoked in the same transaction, so exactly one of them works at any time."""
        key_id = new_key_id()
        token = new_token(key_id)
        now = datetime.now(UTC)
        key = replace(
            old,
            key_id=key_id,
            created_at=now,
            created_by=created_by,
            last_used_at=None,
            revoked_at=None,
        )
        with self._writing() as connection:
            revoked = connection.execute(
                update(api_keys)
                .where(api_keys.c.key_id == old.key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now.timestamp())
            )
            if revoked.rowcount != 1:
                raise QueryError(f"key {old.key_id} is already revoked: create a new one")
            connection.execute(_key_row(key, token))
        return key, token

    def touch(self, key_id: str, at: datetime) -> bool:
        """Note a key's use; ``True`` if this was its first."""
        with self._writing() as connection:
            first = connection.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.last_used_at.is_(None))
                .values(last_used_at=at.timestamp())
            )
            if first.rowcount:
                return True
            connection.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id)
                .values(last_used_at=at.timestamp())
            )
        return False

    # -- dashboard sessions -----------------------------------------------------------------

    def open_session(self, key_id: str, lifetime: float) -> tuple[str, str, float]:
        """A new session: its id, its secret (shown only in the cookie) and its expiry."""
        session_id = secrets.token_hex(16)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC).timestamp()
        with self._writing() as connection:
            connection.execute(
                insert(dashboard_sessions).values(
                    session_id=session_id,
                    secret_hash=digest(secret),
                    key_id=key_id,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
        return session_id, secret, now + lifetime

    def session(self, session_id: str) -> DashboardSession | None:
        with self._reading() as connection:
            row = connection.execute(
                select(dashboard_sessions).where(dashboard_sessions.c.session_id == session_id)
            ).first()
        if row is None:
            return None
        return DashboardSession(
            row.session_id, row.secret_hash, row.key_id, row.expires_at, row.revoked_at
        )

    def close_session(self, session_id: str) -> None:
        with self._writing() as connection:
            connection.execute(
                update(dashboard_sessions)
                .where(
                    dashboard_sessions.c.session_id == session_id,
                    dashboard_sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=datetime.now(UTC).timestamp())
            )

    def secret(self, name: str) -> bytes:
        """A random secret shared by every process of this store (made by the first to ask)."""
        with self._reading() as connection:
            row = connection.execute(
                select(access_secrets.c.value).where(access_secrets.c.name == name)
            ).first()
        if row is not None:
            return bytes.fromhex(row.value)
        try:
            with self._writing() as connection:
                connection.execute(
                    insert(access_secrets).values(name=name, value=secrets.token_hex(32))
                )
        except StoreUnavailable:
            pass  # another process made it first: read theirs
        with self._reading() as connection:
            value = connection.execute(
                select(access_secrets.c.value).where(access_secrets.c.name == name)
            ).scalar_one()
        return bytes.fromhex(value)


def key_fields(key: StoredKey) -> dict[str, object]:
    """What the audit log keeps of a key (never its token or digest)."""
    return {
        "name": key.name,
        "role": key.role.value,
        "org_id": key.org_id,
        "user_id": key.user_id,
        "rate_limit": key.rate_limit,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _key_row(key: StoredKey, token: str) -> Insert:
    """The stored row of a new key: its digest, never the token."""
    return insert(api_keys).values(
        key_id=key.key_id,
        secret_hash=digest(token),
        name=key.name,
        role=key.role.value,
        org_id=key.org_id,
        user_id=key.user_id,
        rate_limit=key.rate_limit,
        created_at=key.created_at.timestamp(),
        created_by=key.created_by,
        expires_at=_stamp(key.expires_at),
    )
