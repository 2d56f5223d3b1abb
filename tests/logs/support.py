"""What the log tests share: settings for a real store (SQLite unless told) and its logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from watchkeeper.config import Settings, load_settings
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import StoredLog
from watchkeeper.storage.factory import open_store


def store_settings(directory: Path, **overrides: object) -> Settings:
    options: dict[str, object] = {
        "database_url": f"sqlite:///{directory / 'watchkeeper.db'}",
        "flush_interval": 0.05,
        "raise_internal_errors": True,
        "spool_max_bytes": 0,
        "gc_freeze": False,
    }
    options.update(overrides)
    return load_settings(**options)


def stored_logs(settings: Settings) -> list[StoredLog]:
    """Every log stored in the last day, newest first, page after page."""
    store = open_store(settings)
    logs: list[StoredLog] = []
    cursor: str | None = None
    try:
        while True:
            page = store.logs(
                TimeRange.last(timedelta(days=1)), Scope.everything(), limit=1_000, cursor=cursor
            )
            logs.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return logs
    finally:
        store.close()
