"""The recorder's account of itself: what it accepted, wrote and dropped, and why.

Counters that only the flush worker touches need no lock. Drops can happen on any thread, so they
go through a lock, which is fine because a drop is the slow path by definition.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum


class DropReason(StrEnum):
    BUFFER_FULL = "buffer_full"
    SHUTDOWN = "shutdown"
    INVALID = "invalid"
    REJECTED = "rejected"
    STORE_UNAVAILABLE = "store_unavailable"
    """Built while the store was down, then pushed out of the waiting queue by newer batches."""


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    recorded: int
    flushed: int
    dropped: dict[str, int]
    buffer_depth: int
    buffer_capacity: int
    pending: int
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
