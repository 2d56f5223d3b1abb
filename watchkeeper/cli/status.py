"""``watchkeeper status``: one screen on the store and the integrations; an exit code for scripts.

Exit 0 healthy, 1 degraded (a warning), 2 failing (store unreachable or out of date, or an
integration failing). It reads the store, so it judges every replica that writes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from watchkeeper.config import Settings, load_settings
from watchkeeper.health.status import HealthStatus
from watchkeeper.health.stored import judge_stored_integrations
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.redaction import scrub_error
from watchkeeper.storage import migrate as migrations
from watchkeeper.storage.factory import open_store, store_location
from watchkeeper.storage.sql_store import SqlStore

RECENT = timedelta(minutes=5)
_STYLE = {HealthStatus.PASS: "green", HealthStatus.WARN: "yellow", HealthStatus.FAIL: "red"}
_EXIT = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


@dataclass(frozen=True)
class Line:
    area: str
    status: HealthStatus
    detail: str


def command() -> None:
    """Show store, schema, recent traffic and integration health; exit 0, 1 or 2."""
    settings = load_settings(migrate_on_start=False)
    lines = [Line("configuration", HealthStatus.PASS, _configuration(settings))]
    try:
        store = open_store(settings)
    except StoreUnavailable as error:
        lines.append(Line("store", HealthStatus.FAIL, scrub_error(str(error))))
        raise typer.Exit(_report(lines)) from None
    try:
        lines += _store_lines(settings, store)
    finally:
        store.close()
    raise typer.Exit(_report(lines))


def _configuration(settings: Settings) -> str:
    access = (
        "OPEN (no key needed)" if settings.open_access else f"{len(settings.api_keys)} API key(s)"
    )
    return (
        f"service {settings.service}; recording {'on' if settings.enabled else 'OFF'}; "
        f"redaction {'on' if settings.redact else 'off'}; API access: {access}"
    )


def _store_lines(settings: Settings, store: SqlStore) -> list[Line]:
    lines = [Line("store", HealthStatus.PASS, f"reachable: {store_location(settings).description}")]
    current, head = migrations.current_revision(store.engine), migrations.head_revision()
    if current != head:
        lines.append(
            Line(
                "schema",
                HealthStatus.FAIL,
                f"at {current or 'nothing'}, head is {head}: run 'watchkeeper migrate'",
            )
        )
        return lines
    lines.append(Line("schema", HealthStatus.PASS, f"current ({head})"))
    window = TimeRange.last(RECENT)
    totals = store.kind_totals(window, Scope.everything())
    events = "spans: " + (", ".join(f"{total.count} {total.kind}" for total in totals) or "none")
    # Another process's recorder cannot be asked how it is doing; the newest stored span is the
    # nearest sign of its flushes (spans are written when they end).
    latest = store.spans(TimeRange.last(timedelta(days=1)), Scope.everything(), limit=1).items
    if latest:
        ended = latest[0].start + timedelta(seconds=latest[0].duration)
        age = f"; last write {max(0, int((datetime.now(UTC) - ended).total_seconds()))} s ago"
    else:
        age = "; no span written in the last day"
    lines.append(Line("traffic (5 min)", HealthStatus.PASS, events + age))
    thresholds = ThresholdBook.from_settings(settings)
    for judged in judge_stored_integrations(store, thresholds, Scope.everything()):
        figures = judged.summary
        detail = f"{figures.count} calls, {figures.error_rate:.1%} errors, p95 " + (
            f"{figures.p95 * 1000:.0f} ms" if figures.p95 is not None else "n/a"
        )
        if judged.reasons:
            detail += " — " + "; ".join(judged.reasons)
        lines.append(Line(f"integration {figures.name}", judged.status, detail))
    return lines


def _report(lines: list[Line]) -> int:
    overall = HealthStatus.worst(line.status for line in lines)
    table = Table(title=f"Watchkeeper status: {overall.value}", title_style=_STYLE[overall])
    table.add_column("Area")
    table.add_column("Status")
    table.add_column("Detail", overflow="fold")
    for line in lines:
        table.add_row(line.area, f"[{_STYLE[line.status]}]{line.status.value}[/]", line.detail)
    Console().print(table)
    return _EXIT[overall]
