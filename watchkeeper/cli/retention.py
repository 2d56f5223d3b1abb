"""``watchkeeper retention``: delete what is older than each table's retention period."""

from __future__ import annotations

import typer

from watchkeeper.config import load_settings
from watchkeeper.model.query import RetainedTable
from watchkeeper.storage.factory import open_store, store_location
from watchkeeper.storage.retention import RetentionPolicy, apply_retention


def command() -> None:
    """Delete old raw spans, logs, metric points and rollups, in small batches."""
    settings = load_settings()
    store = open_store(settings)
    typer.echo(f"Store: {store_location(settings).description}")
    running: dict[RetainedTable, int] = {}

    def progress(table: RetainedTable, removed: int) -> None:
        running[table] = running.get(table, 0) + removed
        typer.echo(f"  {table.value}: {running[table]} deleted so far …")

    try:
        deleted = apply_retention(store, RetentionPolicy.from_settings(settings), progress=progress)
    finally:
        store.close()
    for table, count in deleted.items():
        typer.echo(f"{table.value:>15}: {count} deleted")
