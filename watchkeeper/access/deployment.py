"""Configuration and retention changes in the audit log, recorded as a process that owns the
store starts.

Settings change only between runs (a deploy with other settings), so each process that writes
the store (an app writing its own, a collector, ``watchkeeper serve``) compares, once the store
is open, the settings in effect with those of the newest entry recorded for its service, and adds
an entry only if they differ. Replicas starting with the same settings add one entry between
them: the look and the addition are serialised (:meth:`AuditLog.append_if_changed`). The
retention periods are recorded apart (``retention.changed``), so a change of retention is an
entry of its own. Nothing here can stop a process from starting: a failure is logged.

What is recorded is what the configuration view shows: each secret only as set (``***``) or
not (``""``), never its value nor a digest of it (whoever reads the log could try guesses of a
weak password against a digest); so a secret's rotation is not an entry, its setting or removal
is. The process's own name (``instance``) differs from process to process and is left out.

An entry's ``after`` holds the whole document and its fingerprint (what the next start compares
with); after the first, ``before`` and ``after`` also hold the settings that differ under
``changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from watchkeeper.access.audit import Actor, AuditAction, AuditEntry, AuditLog, Change
from watchkeeper.access.principal import Principal
from watchkeeper.access.roles import Role
from watchkeeper.config import RETENTION_FIELDS, Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.json import JsonValue
from watchkeeper.redaction import Redactor, redact_settings, scrub_urls
from watchkeeper.storage.handle import StoreHandle

logger = logging.getLogger("watchkeeper")

PROCESS = Principal("process", Role.SUPER_ADMIN, "a Watchkeeper process starting")
PER_PROCESS = frozenset({"instance"})
"""Settings that name the process itself, so differ between replicas of one deployment."""
OPEN_POLL_SECONDS = 1.0
_COMMAND_LIMIT = 400


def configuration_document(settings: Settings) -> dict[str, JsonValue]:
    """The settings in effect, secrets only as set or not, without the retention periods."""
    shown = redact_settings(settings)
    return {
        name: value
        for name, value in shown.items()
        if name not in PER_PROCESS and name not in RETENTION_FIELDS
    }


def retention_document(settings: Settings) -> dict[str, JsonValue]:
    """The retention periods in effect, in seconds."""
    return {name: getattr(settings, name).total_seconds() for name in RETENTION_FIELDS}


def fingerprint(document: dict[str, JsonValue]) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def process_actor(settings: Settings) -> Actor:
    """This process: its host, and its command line (without URL passwords or keys)."""
    argv = sys.argv or ["python"]
    command = " ".join([Path(argv[0]).name, *argv[1:]])
    shown = Redactor.build().text(scrub_urls(command))[:_COMMAND_LIMIT]
    return Actor(PROCESS, socket.gethostname(), f"{shown} ({settings.instance})")


def record_settings(audit: AuditLog, settings: Settings, actor: Actor) -> None:
    """Add a configuration entry and a retention entry, each only if it differs from the last
    recorded for this service."""
    service = settings.service
    for action, resource, document in (
        (
            AuditAction.CONFIGURATION_CHANGED,
            f"configuration:{service}",
            configuration_document(settings),
        ),
        (AuditAction.RETENTION_CHANGED, f"retention:{service}", retention_document(settings)),
    ):
        if audit.append_if_changed(actor, action, resource, _change(audit, document)):
            logger.info("Watchkeeper recorded its %s in the audit log (%s).", resource, action)


def _change(
    audit: AuditLog, document: dict[str, JsonValue]
) -> Callable[[AuditEntry | None], Change | None]:
    after: dict[str, Any] = {"fingerprint": fingerprint(document), "settings": document}
    # Compared as the log keeps it (redacted, through JSON), so a value that redaction changes
    # compares equal to itself on every start.
    kept = audit.stored(after)

    def change(newest: AuditEntry | None) -> Change | None:
        previous = newest.after if newest is not None else None
        if previous is None:
            return None, after
        if previous.get("fingerprint") == kept["fingerprint"]:
            return None
        before_settings = previous.get("settings")
        old = before_settings if isinstance(before_settings, dict) else {}
        names = sorted(
            name
            for name in old.keys() | kept["settings"].keys()
            if old.get(name) != kept["settings"].get(name)
        )
        return (
            {"fingerprint": previous.get("fingerprint"), "changed": {n: old.get(n) for n in names}},
            {**after, "changed": {name: document.get(name) for name in names}},
        )

    return change


class SettingsAudit:
    """A runtime component of a process that owns the store: records the settings' changes
    once the store is open (however long that takes), then does nothing more."""

    name = "settings audit"

    def __init__(self, settings: Settings, stores: StoreHandle) -> None:
        self._settings = settings
        self._stores = stores
        self._audit = AuditLog.for_settings(settings, stores.current)
        self._task: asyncio.Task[None] | None = None

    def router(self) -> None:
        return None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._record_once_open(), name="watchkeeper-settings")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _record_once_open(self) -> None:
        while not self._stores.is_open:
            await asyncio.sleep(OPEN_POLL_SECONDS)
        actor = process_actor(self._settings)
        try:
            await asyncio.to_thread(record_settings, self._audit, self._settings, actor)
        except StoreUnavailable as error:
            logger.warning("Watchkeeper could not record its settings in the audit log: %s", error)
        except Exception:
            # Contained: the audit of a start must never be why a process fails.
            logger.exception("Watchkeeper could not record its settings in the audit log")
