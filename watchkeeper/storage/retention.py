"""Deleting what is older than each kind of row's retention period, a little at a time.

Each delete is a short statement over at most ``batch_size`` rows, so the recorder's writes
(which need the same lock on SQLite) wait milliseconds, not the length of the whole clean-up.

Snapshots and sessions follow the spans' period (they are read alongside them on a session's
timeline) and validation results follow the logs' period, so no new settings are needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watchkeeper.config import Settings
from watchkeeper.model.query import RetainedTable
from watchkeeper.model.store import Store

Progress = Callable[[RetainedTable, int], None]
"""Told the table and how many rows went, after each batch that deleted something."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    spans: timedelta
    logs: timedelta
    metrics: timedelta
    minute_rollups: timedelta
    hour_rollups: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            spans=settings.retention_spans,
            logs=settings.retention_logs,
            metrics=settings.retention_metrics,
            minute_rollups=settings.retention_minute_rollups,
            hour_rollups=settings.retention_hour_rollups,
        )

    def period(self, table: RetainedTable) -> timedelta:
        match table:
            case RetainedTable.SPANS:
                return self.spans
            case RetainedTable.LOGS:
                return self.logs
            case RetainedTable.METRICS:
                return self.metrics
            case RetainedTable.MINUTE_ROLLUPS:
                return self.minute_rollups
            case RetainedTable.HOUR_ROLLUPS:
                return self.hour_rollups
            case (
                RetainedTable.SNAPSHOTS
                | RetainedTable.SESSIONS
                | RetainedTable.ERROR_GROUPS
                | RetainedTable.ERROR_COUNTS
                | RetainedTable.ERROR_USERS
                | RetainedTable.ERROR_SAMPLES
                | RetainedTable.WRITTEN_BATCHES
            ):
                return self.spans
            case RetainedTable.VALIDATIONS:
                return self.logs


def apply_retention(
    store: Store,
    policy: RetentionPolicy,
    now: datetime | None = None,
    batch_size: int = 5_000,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> dict[RetainedTable, int]:
    """Delete every row older than its table's period; return how many went from each table.

    ``stop``, once set, ends the run after the batch under way (a process shutting down): what
    went is reported, the rest goes next run.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    now = now or datetime.now(UTC)
    deleted: dict[RetainedTable, int] = {}
    for table in RetainedTable:
        before = now - policy.period(table)
        total = 0
        while not (stop is not None and stop.is_set()) and (
            removed := store.delete_expired(table, before, batch_size)
        ):
            total += removed
            if progress is not None:
                progress(table, removed)
            if removed < batch_size:
                break
        deleted[table] = total
    return deleted
