"""``watchkeeper migrate``: bring the store's schema to a revision (head by default)."""

from __future__ import annotations

from typing import Annotated

import typer

from watchkeeper.config import load_settings
from watchkeeper.storage import migrate as migrations
from watchkeeper.storage.factory import open_store, store_location


def command(
    revision: Annotated[str, typer.Option(help="Revision to upgrade to.")] = "head",
    down: Annotated[
        str | None, typer.Option(help="Walk down to this revision instead ('base' for empty).")
    ] = None,
) -> None:
    """Create or upgrade the store's tables (also done automatically at start-up)."""
    settings = load_settings(migrate_on_start=False)
    location = store_location(settings)
    store = open_store(settings)
    try:
        before = migrations.current_revision(store.engine)
        typer.echo(f"Store: {location.description}")
        typer.echo(f"Revision before: {before or 'none (empty store)'}")
        steps = migrations.revisions()
        if down is not None:
            migrations.downgrade(store.engine, down)
        else:
            target = migrations.head_revision() if revision == "head" else revision
            pending = steps[steps.index(before) + 1 :] if before in steps else steps
            for step in pending:
                typer.echo(f"  applying {step} …")
                migrations.upgrade(store.engine, step)
                if step == target:
                    break
        after = migrations.current_revision(store.engine)
        head = migrations.head_revision()
        typer.echo(
            f"Revision after: {after or 'none (empty store)'}"
            + (" (head)" if after == head else "")
        )
    finally:
        store.close()
