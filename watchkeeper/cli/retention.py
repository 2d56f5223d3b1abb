"""``watchkeeper retention``: delete what is older than each table's retention period.

Each run is in the audit log (``retention.applied``, by the actor ``cli``): the periods it
applied and how many rows went from each table. Processes that write the store also run it
every ``retention_interval`` seconds; this command is for cron when that is 0.
"""

from __future__ import annotations

import typer

from watchkeeper.cli.advice import fail
from watchkeeper.cli.audited import audit_log, cli_actor
from watchkeeper.config import load_settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.query import RetainedTable
from watchkeeper.runtime.retention import run_retention
from watchkeeper.storage.factory import open_store, store_location


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
        counts = run_retention(
            settings, store, audit_log(settings, store), cli_actor("retention"), progress
        )
    except StoreUnavailable as error:
        fail(
            f"the retention run stopped: {error}",
            "Check that the store is reachable, then run the command again: what was deleted "
            "stays deleted, the rest goes then.",
        )
    finally:
        store.close()
    for name, count in counts.items():
        typer.echo(f"{name:>15}: {count} deleted")
