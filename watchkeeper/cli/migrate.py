"""``watchkeeper migrate``: bring the store's schema to a revision (head by default), or down."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import typer
from alembic.util import CommandError
from sqlalchemy.engine import Engine

from watchkeeper._version import __version__
from watchkeeper.cli.advice import fail
from watchkeeper.config import load_settings
from watchkeeper.storage import migrate as migrations
from watchkeeper.storage.errors import DATABASE_ERRORS, describe_error
from watchkeeper.storage.factory import open_store, store_location

BASE = "base"
HEAD = "head"


@dataclass(frozen=True)
class Step:
    """One migration: ``revision`` applied (up) or reverted (down), leaving the store at ``to``."""

    verb: str
    revision: str
    to: str


def command(
    revision: Annotated[str, typer.Option(help="Revision to upgrade to.")] = HEAD,
    down: Annotated[
        str | None,
        typer.Option(help="Walk down to this revision instead ('base' removes every table)."),
    ] = None,
) -> None:
    """Create or upgrade the store's tables (also done automatically at start-up)."""
    if down is not None and revision != HEAD:
        raise typer.BadParameter("give either --revision or --down, not both", param_hint="--down")
    chain = migrations.revisions()
    # Checked before the store is opened, so a typo touches nothing.
    target = (
        _position(chain, down, "--down")
        if down is not None
        else _position(chain, revision, "--revision")
    )

    settings = load_settings(migrate_on_start=False)
    store = open_store(settings)
    try:
        before = migrations.current_revision(store.engine)
        typer.echo(f"Store: {store_location(settings).description}")
        typer.echo(f"Revision before: {_shown(before)}")
        if before is not None and before not in chain:
            fail(
                f"the store is at revision {before}, which Watchkeeper {__version__} does not "
                "know: a newer Watchkeeper migrated it.",
                "Upgrade Watchkeeper to the version your app runs, then retry.",
            )
        steps = _plan(chain, chain.index(before) if before else -1, target, down is not None)
        for step in steps:
            _run(store.engine, step, migrations.current_revision(store.engine))
        # At head, the version table alone does not prove the tables are there: a table dropped
        # by hand stays missing, whatever it says. Recreated here (the last step did it too).
        repaired = _repair(store.engine) if down is None and target == len(chain) - 1 else []
        if not steps and not repaired:
            typer.echo("Nothing to do.")
        after = migrations.current_revision(store.engine)
        head = " (head)" if after == migrations.head_revision() else ""
        typer.echo(f"Revision after: {_shown(after)}{head}")
    finally:
        store.close()


def _position(chain: list[str], name: str, option: str) -> int:
    """Index of ``name`` in ``chain``; -1 stands for base, the empty store."""
    if name == BASE:
        return -1
    if name == HEAD:
        return len(chain) - 1
    if name not in chain:
        known = ", ".join([BASE, *chain, HEAD])
        raise typer.BadParameter(f"no revision {name!r}; known: {known}", param_hint=option)
    return chain.index(name)


def _plan(chain: list[str], current: int, target: int, downward: bool) -> list[Step]:
    if downward:
        if target > current:
            fail(
                f"the store is at {_shown(_at(chain, current))}, below {chain[target]}.",
                f"To go up, run: watchkeeper migrate --revision {chain[target]}",
            )
        return [
            Step("reverting", chain[index], _at(chain, index - 1) or BASE)
            for index in range(current, target, -1)
        ]
    if target < current:
        fail(
            f"the store is at {chain[current]}, beyond {_at(chain, target) or BASE}.",
            f"To go back, run: watchkeeper migrate --down {_at(chain, target) or BASE}",
        )
    return [
        Step("applying", chain[index], chain[index]) for index in range(current + 1, target + 1)
    ]


def _run(engine: Engine, step: Step, before: str | None) -> None:
    typer.echo(f"  {step.verb} {step.revision} … ", nl=False)
    started = time.perf_counter()
    try:
        if step.verb == "applying":
            migrations.upgrade(engine, step.to)
        else:
            migrations.downgrade(engine, step.to)
    except (CommandError, *DATABASE_ERRORS) as error:
        typer.echo("failed")
        # Each step is one transaction, so a failed step leaves the store where it was.
        fail(
            f"{step.verb} revision {step.revision} failed: {describe_error(error)}.",
            f"The store is still at {_shown(before)}. Check that the database user may create "
            "and alter tables, then retry.",
        )
    typer.echo(f"done ({time.perf_counter() - started:.2f} s)")


def _repair(engine: Engine) -> list[str]:
    try:
        repaired = migrations.repair(engine)
    except DATABASE_ERRORS as error:
        fail(
            f"recreating missing tables failed: {describe_error(error)}.",
            "Check that the database user may create tables and indexes, then retry.",
        )
    if repaired:
        typer.echo(f"Recreated what was missing: {', '.join(repaired)}")
    return repaired


def _at(chain: list[str], index: int) -> str | None:
    return chain[index] if index >= 0 else None


def _shown(revision: str | None) -> str:
    return revision or "none (empty store)"
