"""``watchkeeper alerts``: list, acknowledge and silence alerts, manage rules, test a channel.

It works on the store the settings name, as the API does, so it needs no running server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from watchkeeper.access.audit import AuditAction
from watchkeeper.alerts.channels import send_test
from watchkeeper.alerts.configuration import explain, load_configuration
from watchkeeper.alerts.model import Matcher, MatchOp, RuleSource
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.cli.advice import EXIT_PROBLEM
from watchkeeper.cli.audited import audit_log, cli_actor
from watchkeeper.config import load_settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.storage.factory import open_store

app = typer.Typer(help="Alerts: list, acknowledge, silence; rules; test a channel.")

_OPERATORS = ("=~", "!=", "=")


@contextmanager
def _alerts() -> Iterator[AlertStore]:
    with _audited() as (alerts, _):
        yield alerts


@contextmanager
def _audited() -> Iterator[tuple[AlertStore, Callable[..., None]]]:
    """The alerts' store, and a function writing an audit entry by the command line."""
    settings = load_settings()
    store = open_store(settings)
    engine = getattr(store, "engine", None)
    try:
        if engine is None:
            raise StoreUnavailable("alerts need Watchkeeper's SQL store")
        log, actor = audit_log(settings, store), cli_actor("alerts")
        yield AlertStore(engine), functools.partial(log.write, actor)
    finally:
        store.close()


def _fail(message: str) -> None:
    typer.echo(f"watchkeeper: {message}", err=True)
    raise typer.Exit(EXIT_PROBLEM)


def _stamp(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@app.command("list")
def list_alerts(
    history: Annotated[bool, typer.Option(help="Resolved alerts too, newest first.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Firing and pending alerts (or the history)."""
    with _alerts() as alerts:
        found = alerts.recent_alerts(limit) if history else alerts.open_alerts()
    if not found:
        typer.echo("No alerts." if history else "No firing or pending alerts.")
        return
    for alert in found:
        labels = ",".join(f"{key}={value}" for key, value in sorted(alert.labels.items()))
        value = "no data" if alert.value is None else f"{alert.value:g}"
        acked = f" acked by {alert.acked_by}" if alert.acked_by else ""
        typer.echo(
            f"{alert.id:>6}  {alert.state.value:<8} {alert.severity.value:<8} {alert.rule} "
            f"{{{labels}}} value {value} since {_stamp(alert.fired_at or alert.pending_since)} "
            f"UTC{acked}"
        )


@app.command("ack")
def acknowledge(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `alerts list`).")],
    by: Annotated[str, typer.Option(help="Who acknowledges.")],
    note: Annotated[str, typer.Option(help="Why, or what is being done.")] = "",
) -> None:
    """Acknowledge an alert: no more repeats or escalation for it."""
    with _audited() as (alerts, audit):
        alert = alerts.acknowledge(alert_id, by, note)
        if alert is not None:
            audit(AuditAction.ALERT_ACKNOWLEDGED, str(alert_id), after={"by": by, "note": note})
    if alert is None:
        _fail(f"no open alert {alert_id}")
    typer.echo(f"Alert {alert_id} acknowledged by {by}.")


def _matcher(text: str) -> Matcher:
    for operator in _OPERATORS:
        name, found, value = text.partition(operator)
        if found:
            try:
                return Matcher(name=name.strip(), op=MatchOp(operator), value=value.strip())
            except ValidationError as error:
                raise typer.BadParameter(explain(error)) from None
    raise typer.BadParameter(f"{text!r}: expected name=value, name!=value or name=~regex")


@app.command("silence")
def silence(
    matchers: Annotated[list[str], typer.Argument(help="Label matchers: name=value, =~, !=.")],
    minutes: Annotated[int, typer.Option(min=1, max=90 * 24 * 60, help="How long.")] = 60,
    by: Annotated[str, typer.Option(help="Who silences.")] = "cli",
    comment: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Silence alerts whose labels match, for a while."""
    parsed = [_matcher(text) for text in matchers]
    now = time.time()
    with _audited() as (alerts, audit):
        created = alerts.add_silence(parsed, now, now + minutes * 60, by, comment)
        shown = {"matchers": matchers, "ends_at": created.ends_at, "by": by, "comment": comment}
        audit(AuditAction.SILENCE_CHANGED, str(created.id), after=shown)
    typer.echo(f"Silence {created.id} until {_stamp(created.ends_at)} UTC.")


@app.command("rules")
def rules() -> None:
    """Every rule, whether it is on, and where it comes from."""
    with _alerts() as alerts:
        found = alerts.rules()
    for stored in found:
        state = "on " if stored.enabled else "off"
        typer.echo(
            f"{state} {stored.rule.name:<28} {stored.rule.signal.kind.value:<24} "
            f"({stored.source.value})"
        )


@app.command("set-rule")
def set_rule(
    path: Annotated[Path, typer.Argument(help="A JSON file holding one rule.", exists=True)],
) -> None:
    """Create or replace a rule from a JSON file."""
    try:
        rule = Rule.model_validate(json.loads(path.read_text(encoding="utf-8"))).checked()
    except ValueError as error:
        text = explain(error) if isinstance(error, ValidationError) else str(error)
        _fail(f"{path}: {text}")
        return
    with _audited() as (alerts, audit):
        alerts.put_rule(rule, RuleSource.API, "cli")
        audit(AuditAction.RULE_CHANGED, rule.name, after=rule.model_dump(mode="json"))
    typer.echo(f"Rule {rule.name} stored.")


@app.command("enable")
def enable(name: str) -> None:
    """Turn a rule on."""
    _set_enabled(name, True)


@app.command("disable")
def disable(name: str) -> None:
    """Turn a rule off; its alerts resolve quietly."""
    _set_enabled(name, False)


def _set_enabled(name: str, enabled: bool) -> None:
    with _audited() as (alerts, audit):
        changed = alerts.set_enabled(name, enabled, "cli")
        if changed:
            audit(AuditAction.RULE_CHANGED, name, after={"enabled": enabled})
    if not changed:
        _fail(f"no alert rule named {name!r}")
    typer.echo(f"Rule {name} {'on' if enabled else 'off'}.")


@app.command("delete-rule")
def delete_rule(name: str) -> None:
    """Delete a rule (a default or file rule comes back at the next start)."""
    with _audited() as (alerts, audit):
        deleted = alerts.delete_rule(name)
        if deleted:
            audit(AuditAction.RULE_CHANGED, name, after={"deleted": True})
    if not deleted:
        _fail(f"no alert rule named {name!r}")
    typer.echo(f"Rule {name} deleted.")


@app.command("test-channel")
def test_channel(name: Annotated[str, typer.Argument(help="A configured channel's name.")]) -> None:
    """Send a test notification through a configured channel."""
    settings = load_settings()
    channels = load_configuration(settings).channels
    channel = channels.get(name)
    if channel is None:
        _fail(f"no channel named {name!r} (configured: {', '.join(sorted(channels)) or 'none'})")
        return

    async def send() -> None:
        try:
            delivery = await send_test(channel, settings.dashboard_url)
        finally:
            await channel.aclose()
        if not delivery.delivered:
            _fail(f"{name}: not delivered after {delivery.attempts} attempt(s): {delivery.error}")
        typer.echo(f"{name}: delivered ({delivery.attempts} attempt(s)).")

    asyncio.run(send())
