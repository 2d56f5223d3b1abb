"""Retention runs: what ``watchkeeper retention`` does once, and what a process that writes the
store does every ``retention_interval`` seconds.

Each run deletes what is past its table's period in small batches, the audit log's old entries
by its own period, and is recorded as ``retention.applied``, with the periods applied and the
rows deleted per table. Replicas of one deployment share the work through that record: a process
whose turn comes skips its run when the audit log holds a run newer than one interval. Two
replicas that start a run at the same instant both delete, and that is harmless: a row deleted
twice is deleted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, datetime, timedelta

from watchkeeper.access.audit import Actor, AuditAction, AuditLog
from watchkeeper.access.deployment import process_actor, retention_document
from watchkeeper.config import Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.json import JsonValue
from watchkeeper.model.store import Store
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.retention import Progress, RetentionPolicy, apply_retention

logger = logging.getLogger("watchkeeper")

RESOURCE = "retention"
AUDIT_ENTRIES = "audit entries"
"""The audit log's own line in a run's counts."""


def run_retention(
    settings: Settings,
    store: Store,
    audit: AuditLog,
    actor: Actor,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """One run: rows deleted per table (and ``audit entries``), audited as ``retention.applied``.

    ``stop``, once set, ends the run after the batch under way; the entry then says it did not
    finish. Raises :class:`StoreUnavailable` when the store fails part way: what was deleted
    stays deleted, and the next run deletes the rest.
    """
    policy = RetentionPolicy.from_settings(settings)
    deleted = apply_retention(store, policy, progress=progress, stop=stop)
    counts: dict[str, int] = {table.value: count for table, count in deleted.items()}
    finished = stop is None or not stop.is_set()
    # The audit log has its own, longer period (WATCHKEEPER_RETENTION_AUDIT).
    oldest_kept = datetime.now(UTC) - settings.retention_audit
    counts[AUDIT_ENTRIES] = audit.delete_older_than(oldest_kept) if finished else 0
    recorded: dict[str, JsonValue] = {
        "deleted": dict(counts),
        "periods": retention_document(settings),
        "finished": finished,
    }
    audit.write(actor, AuditAction.RETENTION_APPLIED, RESOURCE, after=recorded)
    return counts


def ran_within(audit: AuditLog, seconds: float) -> bool:
    """Whether any process recorded a run in the last ``seconds`` (or, its clock ahead of this
    one's, as far in the future)."""
    now = datetime.now(UTC)
    since, until = now - timedelta(seconds=seconds), now + timedelta(seconds=seconds)
    return bool(audit.entries(None, True, since, until, AuditAction.RETENTION_APPLIED, limit=1))


class RetentionJob:
    """A runtime component of a process that writes the store: a retention run every
    ``retention_interval`` seconds, the first one interval after the start."""

    name = "retention"

    def __init__(self, settings: Settings, stores: StoreHandle) -> None:
        self._settings = settings
        self._stores = stores
        self._audit = AuditLog.for_settings(settings, stores.current)
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()
        self._turning = threading.Lock()
        self.runs = 0
        """Runs this process made (skipped turns not counted)."""

    def router(self) -> None:
        return None

    async def start(self) -> None:
        if self._settings.retention_interval > 0:
            self._task = asyncio.create_task(self._every_interval(), name="watchkeeper-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # A run under way on its thread ends after its current batch, before the store closes.
        await asyncio.to_thread(self._wait_for_turn)

    def _wait_for_turn(self) -> None:
        with self._turning:
            pass

    async def _every_interval(self) -> None:
        interval = self._settings.retention_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.turn)
            except StoreUnavailable as error:
                logger.warning("Watchkeeper's retention run waits for the store: %s", error)
            except Exception:
                # Contained: the next turn tries again; recording and serving go on.
                logger.exception("Watchkeeper's retention run failed")

    def turn(self) -> dict[str, int] | None:
        """Run unless another process ran within the interval; the counts, or ``None``."""
        with self._turning:
            if self._stopping.is_set():
                return None
            if not self._stores.is_open:
                raise StoreUnavailable("the store is not open yet")
            if ran_within(self._audit, self._settings.retention_interval):
                return None
            actor = process_actor(self._settings)
            store = self._stores.current()
            counts = run_retention(self._settings, store, self._audit, actor, stop=self._stopping)
            self.runs += 1
        if any(counts.values()):
            shown = ", ".join(f"{count:,} {name}" for name, count in counts.items() if count)
            logger.info("Watchkeeper's retention run deleted %s.", shown)
        return counts
