"""``watchkeeper keys``: create, list, rotate and revoke stored API keys, on the store directly.

Whoever can run this with the store's settings administers Watchkeeper: it is how the first
stored key is made. Every change is in the audit log, by the actor ``cli``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from watchkeeper.access.audit import Actor, AuditAction, AuditLog
from watchkeeper.access.directory import KeyDirectory, KeyRequest, StoredKey, key_fields
from watchkeeper.access.roles import Role
from watchkeeper.cli.advice import fail
from watchkeeper.cli.audited import CLI, audit_log, cli_actor
from watchkeeper.config import load_settings
from watchkeeper.model.errors import QueryError
from watchkeeper.storage.factory import open_store

app = typer.Typer(help="Stored API keys: create, list, rotate, revoke.", no_args_is_help=True)


@contextmanager
def _opened() -> Iterator[tuple[KeyDirectory, AuditLog, Actor]]:
    settings = load_settings()
    store = open_store(settings)
    try:
        yield KeyDirectory(lambda: store), audit_log(settings, store), cli_actor("keys")
    finally:
        store.close()


def _show_token(key: StoredKey, token: str) -> None:
    typer.echo(f"Key {key.key_id} ({key.role.value}, {key.name})")
    typer.echo("Its token, shown this once (Watchkeeper keeps only a digest of it):")
    typer.echo(token)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    org: Annotated[str | None, typer.Option(help="Its organisation (org_admin, user).")] = None,
    user: Annotated[str | None, typer.Option(help="Its user id (user keys).")] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(min=0.001, help="Expire after this many days.")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute (default: the role's).")
    ] = None,
) -> None:
    """Create a key and print its token (once)."""
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    request = KeyRequest(name, role, org, user, expires, rate_limit)
    with _opened() as (directory, audit, actor):
        try:
            key, token = directory.create(request, CLI.key_id)
        except QueryError as error:
            fail(str(error), "Fix the option named above and retry.")
        audit.write(
            actor, AuditAction.KEY_CREATED, f"key:{key.key_id}", after=key_fields(key), org_id=org
        )
    _show_token(key, token)


@app.command("list")
def list_keys(
    org: Annotated[str | None, typer.Option(help="Only this organisation's keys.")] = None,
) -> None:
    """List keys, newest first (never their tokens)."""
    with _opened() as (directory, _, _):
        keys = directory.keys(org, everything=org is None)
    if not keys:
        typer.echo("No stored keys.")
        return
    for key in keys:
        state = (
            "revoked"
            if key.revoked_at
            else "expired"
            if key.expires_at and key.expires_at <= datetime.now(UTC)
            else "active"
        )
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        typer.echo(
            f"{key.key_id}  {state:<7}  {key.role.value:<11}  org={key.org_id or '-'}  "
            f"user={key.user_id or '-'}  last used {used}  {key.name}"
        )


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key: it, and dashboard sessions logged in with it, stop working at once."""
    with _opened() as (directory, audit, actor):
        found = directory.find(key_id)
        if found is None:
            fail(f"there is no key {key_id}", "List them with `watchkeeper keys list`.")
        key = directory.revoke(key_id)
        audit.write(
            actor,
            AuditAction.KEY_REVOKED,
            f"key:{key_id}",
            before=key_fields(found[0]),
            org_id=found[0].org_id,
        )
    typer.echo(f"Key {key_id} revoked" + (f" ({key.name})." if key else "."))


@app.command("rotate")
def rotate(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Replace a key by a new one with the same role; the old one stops working now."""
    with _opened() as (directory, audit, actor):
        found = directory.find(key_id)
        if found is None:
            fail(f"there is no key {key_id}", "List them with `watchkeeper keys list`.")
        try:
            key, token = directory.rotate(found[0], CLI.key_id)
        except QueryError as error:
            fail(str(error), "Create a new key with `watchkeeper keys create`.")
        audit.write(
            actor,
            AuditAction.KEY_ROTATED,
            f"key:{key_id}",
            before={"id": key_id},
            after={"id": key.key_id, **key_fields(key)},
            org_id=key.org_id,
        )
    _show_token(key, token)
