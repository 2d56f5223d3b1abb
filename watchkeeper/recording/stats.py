"""The recorder's account of itself: what it accepted, wrote and dropped, and why.

Counters that only the flush worker touches need no lock. Drops can happen on any thread, so they
go through a lock, which is fine because a drop is the slow path by definition.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from watchkeeper.model.batch import Batch


class DropReason(StrEnum):
    BUFFER_FULL = "buffer_full"
    SHUTDOWN = "shutdown"
    INVALID = "invalid"
    REJECTED = "rejected"
    STORE_UNAVAILABLE = "store_unavailable"
    """Built while the store was down, then pushed out of the waiting queue by newer batches
    with no spool to take them."""
    SPOOL_FULL = "spool_full"
    """Spooled while the store was down, then deleted, oldest first, to keep within the cap."""
    SPOOL_CORRUPT = "spool_corrupt"
    """In a spool file that could not be read back (damaged, truncated, not Watchkeeper's)."""
    SPOOL_UNWRITABLE = "spool_unwritable"
    """Due for the spool while the store was down, but the file could not be written."""
    EXPORT_QUEUE_FULL = "export_queue_full"
    """Stored, but not sent to the OTLP export endpoint: its queue was full."""
    EXPORT_FAILED = "export_failed"
    """Stored, but the OTLP export endpoint refused them or could not be reached in time."""
    EXPORT_SHUTDOWN = "export_shutdown"
    """Stored, but the process stopped before they could be sent to the OTLP export endpoint."""
    LOG_SHARE_FULL = "log_share_full"
    """A log record that found the logs' share of the buffer full (a log storm): logs are
    dropped before spans, which keep the rest of the buffer."""


DROPPED_METRIC = "watchkeeper.dropped"
"""The self-monitoring figure of losses: a counter point per reason, written like any metric, so
the store keeps the history of what was lost across restarts."""


def app_events(batch: Batch) -> int:
    """The app's events in a batch: all but Watchkeeper's own loss figures, which are not
    counted as recorded, written or dropped (they describe those counts)."""
    own = sum(1 for point in batch.metrics if point.name == DROPPED_METRIC)
    return len(batch) - own


_EXPLANATIONS = {
    DropReason.BUFFER_FULL: "the in-memory buffer was full (raise WATCHKEEPER_BUFFER_SIZE)",
    DropReason.SHUTDOWN: "the process stopped before they could be written or spooled",
    DropReason.INVALID: "they were not events Watchkeeper can record",
    DropReason.REJECTED: "the store rejected them",
    DropReason.STORE_UNAVAILABLE: "the store was down and the waiting queue was full "
    "(set WATCHKEEPER_SPOOL_MAX_BYTES to keep them on disk)",
    DropReason.SPOOL_FULL: "the store was down and the spool was full "
    "(raise WATCHKEEPER_SPOOL_MAX_BYTES)",
    DropReason.SPOOL_CORRUPT: "a spool file could not be read back",
    DropReason.SPOOL_UNWRITABLE: "the store was down and the spool could not be written",
    DropReason.EXPORT_QUEUE_FULL: "stored, but not exported: the OTLP endpoint is slower "
    "than the app records (its queue holds WATCHKEEPER_BUFFER_SIZE spans)",
    DropReason.EXPORT_FAILED: "stored, but not exported: the OTLP endpoint refused them or "
    "did not answer within WATCHKEEPER_OTLP_EXPORT_TIMEOUT",
    DropReason.EXPORT_SHUTDOWN: "stored, but not exported: the process stopped first",
    DropReason.LOG_SHARE_FULL: "log records filled their share of the buffer, which spans "
    "keep the rest of (raise WATCHKEEPER_LOG_BUFFER_SHARE or WATCHKEEPER_LOG_LEVEL)",
}


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    recorded: int
    flushed: int
    dropped: dict[str, int]
    buffer_depth: int
    buffer_capacity: int
    pending: int
    spooled: int
    batches_written: int
    store_failures: int
    flush_lag_seconds: float | None
    last_flush_at: float | None
    last_flush_seconds: float | None
    last_flush_error: str | None
    live_keys: int
    live_evictions: int
    internal_errors: int
    rss_bytes: int
    shipped: int = 0
    """Events a collector acknowledged (when this process ships to one)."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class RecorderCounters:
    """Mutable counters shared by the hot path (drops) and the worker (everything else)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.dropped: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        self.drained = 0
        self.flushed = 0
        self.shipped = 0
        self.batches_written = 0
        self.store_failures = 0
        self.flush_lag_seconds: float | None = None
        self.last_flush_at: float | None = None
        self.last_flush_seconds: float | None = None
        self.last_flush_error: str | None = None

    def drop(self, reason: DropReason, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def dropped_snapshot(self) -> dict[str, int]:
        with self._lock:
            return {reason.value: count for reason, count in self.dropped.items()}


logger = logging.getLogger("watchkeeper")


class LossLog:
    """Says what was lost, by reason, on the ``watchkeeper`` logger, at a bounded rate.

    At most one line per reason per ``interval`` seconds, carrying the count since the previous
    line and since start: a flood of drops (a full buffer under load) costs one line, and an
    operator still learns of every loss. Never an event's contents: only counts and reasons.
    Called on the flush worker (and once at shutdown), never on the request path.
    """

    def __init__(self, counters: RecorderCounters, interval: float) -> None:
        self._counters = counters
        self._interval = interval
        self._reported: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}

    def report(self, *, final: bool = False) -> dict[str, int]:
        """Log the losses that are due; return them (reason -> events since the last line).

        ``final`` logs everything not yet told, due or not: the process is stopping.
        """
        now = time.monotonic()
        due: dict[str, int] = {}
        for reason, total in self._counters.dropped_snapshot().items():
            new = total - self._reported.get(reason, 0)
            last = self._logged_at.get(reason)
            if new <= 0 or (not final and last is not None and now - last < self._interval):
                continue
            self._reported[reason] = total
            self._logged_at[reason] = now
            due[reason] = new
            since = "" if last is None else f" in the last {now - last:.1f} s"
            logger.warning(
                "Watchkeeper dropped %d events%s (reason: %s; %d since start): %s.",
                new,
                since,
                reason,
                total,
                _EXPLANATIONS[DropReason(reason)],
            )
        return due
