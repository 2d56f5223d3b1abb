"""The audit log: who did what to which resource, when, from where, and how it ended.

Entries are written synchronously, in their own transaction, before the caller is answered:
never through the recorder's buffer, which may drop events under load. If an entry cannot be
written the action it describes fails (a 503) rather than happening unrecorded. Entries are
only ever added; no route changes or deletes one, and only retention removes old ones
(``WATCHKEEPER_RETENTION_AUDIT``, 400 days by default).

Other features record their own actions with :func:`record`, from any route behind the API's
guard::

    from watchkeeper.access.audit import AuditAction, record

    record(request, AuditAction.RULE_CHANGED, f"rule:{rule.id}", before=old, after=new)

``before`` and ``after`` are redacted (credential-like names, personal data) before storing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import delete, insert, select, text

from watchkeeper.access.principal import PRINCIPAL_STATE, Principal
from watchkeeper.config import Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.store import Store
from watchkeeper.redaction import REDACTED, Redactor, is_credential_name
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.errors import DATABASE_ERRORS
from watchkeeper.storage.schema import audit_entries
from watchkeeper.storage.sql_store import SqlStore

logger = logging.getLogger("watchkeeper")

AUDIT_STATE = "watchkeeper_audit"
MAX_PAGE = 1000
_TEXT_LIMIT = 512
CONFIGURATION = "configuration"
"""The resource of a read of the configuration, from the API or health's endpoint alike."""


class AuditAction(StrEnum):
    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    KEY_FIRST_USED = "key.first_used"
    LOGIN = "session.login"
    LOGOUT = "session.logout"
    AUTHENTICATION_FAILED = "authentication.failed"
    RULE_CHANGED = "rule.changed"
    SILENCE_CHANGED = "silence.changed"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    CONFIGURATION_CHANGED = "configuration.changed"
    """Settings in effect that differ from the last recorded (see ``access.deployment``)."""
    RETENTION_CHANGED = "retention.changed"
    """Retention periods in effect that differ from the last recorded."""
    RETENTION_APPLIED = "retention.applied"
    """A retention run (``watchkeeper retention``, or a process's periodic one): what it
    deleted from each table."""
    EXPORTED = "exported"
    SENSITIVE_READ = "sensitive.read"
    """A read of a sensitive view: a session's snapshots, the configuration."""


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


Change = tuple[Mapping[str, Any] | None, Mapping[str, Any]]
"""What an entry keeps of a change: its before (``None``: nothing before it) and its after."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    time: datetime
    key_id: str | None
    role: str | None
    org_id: str | None
    action: str
    resource: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    outcome: str
    client: str | None
    user_agent: str | None
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, seen from where."""

    principal: Principal | None
    client: str | None = None
    user_agent: str | None = None
    trace_id: str | None = None

    @classmethod
    def of(cls, request: Request, principal: Principal | None = None) -> Actor:
        found = principal or getattr(request.state, PRINCIPAL_STATE, None)
        return cls(
            found if isinstance(found, Principal) else None,
            request.client.host if request.client else None,
            _bounded(request.headers.get("user-agent")),
            _trace_id(request.headers.get("traceparent")),
        )


def _bounded(text: str | None) -> str | None:
    return None if text is None else text[:_TEXT_LIMIT]


def _trace_id(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and all(c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return None


class AuditLog:
    """Writes and reads the store's audit entries."""

    def __init__(self, current: Callable[[], Store], redactor: Redactor | None = None) -> None:
        self._current = current
        self._redactor = redactor or Redactor.build()

    @classmethod
    def for_settings(cls, settings: Settings, current: Callable[[], Store]) -> AuditLog:
        """The audit log of ``current``'s store, redacting as the settings say."""
        return cls(current, Redactor.build(settings.redact_fields, settings.redact_patterns))

    def _store(self) -> SqlStore:
        store = self._current()
        if not isinstance(store, SqlStore):
            raise StoreUnavailable("this store keeps no audit log")
        return store

    @property
    def available(self) -> bool:
        try:
            self._store()
        except StoreUnavailable:
            return False
        return True

    def write(
        self,
        actor: Actor,
        action: AuditAction,
        resource: str | None = None,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        org_id: str | None = None,
    ) -> None:
        """Add one entry now; :class:`StoreUnavailable` if it cannot be stored.

        ``org_id`` is the organisation the resource belongs to, when it is not the actor's own
        (a super admin revoking an organisation's key): its admins then see the entry too.
        """
        store = self._current()
        if not isinstance(store, SqlStore):
            return  # a store that is not a database (a test's memory sink) keeps no audit log
        row = self._row(actor, action, resource, before, after, outcome, org_id)
        try:
            with write_transaction(store.engine) as connection:
                connection.execute(insert(audit_entries).values(**row))
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(
                f"could not write an audit entry: {type(error).__name__}"
            ) from None

    def note_read(self, actor: Actor, resource: str) -> None:
        """Record a read of a sensitive view that needs no store (the configuration): while
        the store is unavailable the view is still answered, and the gap is logged instead."""
        try:
            self.write(actor, AuditAction.SENSITIVE_READ, resource)
        except StoreUnavailable:
            logger.warning(
                "Watchkeeper could not audit a read of %s: the store is unavailable", resource
            )

    def append_if_changed(
        self,
        actor: Actor,
        action: AuditAction,
        resource: str,
        change: Callable[[AuditEntry | None], Change | None],
    ) -> bool:
        """Add an entry if ``change``, given the newest entry of ``action`` on ``resource``
        (``None``: there is none), returns one; whether it did.

        The look and the addition are one transaction, serialised with any other on the same
        action and resource (SQLite's write lock; a PostgreSQL advisory lock), so processes
        starting together with the same settings add one entry, not one each.
        """
        store = self._current()
        if not isinstance(store, SqlStore):
            return False
        newest = (
            select(audit_entries)
            .where(audit_entries.c.action == action.value, audit_entries.c.resource == resource)
            .order_by(audit_entries.c.id.desc())
            .limit(1)
        )
        try:
            with write_transaction(store.engine) as connection:
                if Dialect.of(store.engine.url) is Dialect.POSTGRESQL:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": _lock_key(action, resource)},
                    )
                row = connection.execute(newest).first()
                changed = change(None if row is None else _entry(row))
                if changed is None:
                    return False
                before, after = changed
                values = self._row(actor, action, resource, before, after, Outcome.SUCCESS, None)
                connection.execute(insert(audit_entries).values(**values))
                return True
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(
                f"could not write an audit entry: {type(error).__name__}"
            ) from None

    def _row(
        self,
        actor: Actor,
        action: AuditAction,
        resource: str | None,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        outcome: Outcome,
        org_id: str | None,
    ) -> dict[str, Any]:
        principal = actor.principal
        return {
            "time": datetime.now(UTC).timestamp(),
            "key_id": principal.key_id if principal else None,
            "role": principal.role.value if principal else None,
            "org_id": org_id if org_id is not None else (principal.org_id if principal else None),
            "action": action.value,
            "resource": _bounded(resource),
            "before": self._encoded(before),
            "after": self._encoded(after),
            "outcome": outcome.value,
            "client": actor.client,
            "user_agent": actor.user_agent,
            "trace_id": actor.trace_id,
        }

    def stored(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` as an entry keeps it (redacted, through JSON): what a stored entry's before
        or after is compared with."""
        kept: dict[str, Any] = orjson.loads(orjson.dumps(self._redacted(data), default=str))
        return kept

    def _encoded(self, data: Mapping[str, Any] | None) -> str | None:
        if data is None:
            return None
        return orjson.dumps(self._redacted(data), default=str).decode()

    def _redacted(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: REDACTED if is_credential_name(str(key)) else value
            for key, value in self._redactor.mapping(data).items()
        }

    def entries(
        self,
        org_id: str | None,
        everything: bool,
        since: datetime,
        until: datetime,
        action: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """Newest first: every organisation's (``everything``) or one organisation's."""
        query = (
            select(audit_entries)
            .where(
                audit_entries.c.time >= since.timestamp(), audit_entries.c.time < until.timestamp()
            )
            .order_by(audit_entries.c.id.desc())
            .limit(min(limit, MAX_PAGE))
        )
        if not everything:
            query = query.where(audit_entries.c.org_id == org_id)
        if action is not None:
            query = query.where(audit_entries.c.action == action)
        if before_id is not None:
            query = query.where(audit_entries.c.id < before_id)
        try:
            with self._store().engine.connect() as connection:
                return [_entry(row) for row in connection.execute(query)]
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(
                f"could not read the audit log: {type(error).__name__}"
            ) from None

    def all_entries(
        self, org_id: str | None, everything: bool, since: datetime, until: datetime
    ) -> Iterator[AuditEntry]:
        """Every entry in the range, newest first, a page at a time (for exports)."""
        before_id: int | None = None
        while True:
            page = self.entries(org_id, everything, since, until, None, MAX_PAGE, before_id)
            yield from page
            if len(page) < MAX_PAGE:
                return
            before_id = page[-1].id

    def delete_older_than(self, before: datetime, batch_size: int = 5000) -> int:
        """Retention: remove entries older than ``before``, a batch at a time."""
        table = audit_entries
        removed = 0
        while True:
            with write_transaction(self._store().engine) as connection:
                ids = select(table.c.id).where(table.c.time < before.timestamp()).limit(batch_size)
                count = connection.execute(delete(table).where(table.c.id.in_(ids))).rowcount
            removed += count
            if count < batch_size:
                return removed


def _lock_key(action: AuditAction, resource: str) -> int:
    """A PostgreSQL advisory lock's key (a signed 64-bit integer) for one action on a resource."""
    digest = hashlib.sha256(f"watchkeeper audit {action.value} {resource}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _decoded(text: str | None) -> dict[str, Any] | None:
    decoded = None if text is None else orjson.loads(text)
    return decoded if isinstance(decoded, dict) else None


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        time=datetime.fromtimestamp(row.time, UTC),
        key_id=row.key_id,
        role=row.role,
        org_id=row.org_id,
        action=row.action,
        resource=row.resource,
        before=_decoded(row.before),
        after=_decoded(row.after),
        outcome=row.outcome,
        client=row.client,
        user_agent=row.user_agent,
        trace_id=row.trace_id,
    )


def record(
    request: Request,
    action: AuditAction,
    resource: str | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    org_id: str | None = None,
) -> None:
    """Add an audit entry for the authenticated caller of ``request``, synchronously.

    Call it from a route behind the API's guard (which authenticated the caller and made the
    audit log reachable); from an ``async`` route, run it in a thread
    (``await asyncio.to_thread(record, request, ...)``): it writes to the database. Raises
    :class:`StoreUnavailable` (answered as a 503) if the entry cannot be stored.
    """
    log = getattr(request.state, AUDIT_STATE, None)
    if not isinstance(log, AuditLog):
        raise RuntimeError("record() needs a request authenticated by Watchkeeper's API guard")
    log.write(
        Actor.of(request),
        action,
        resource,
        before=before,
        after=after,
        outcome=outcome,
        org_id=org_id,
    )
