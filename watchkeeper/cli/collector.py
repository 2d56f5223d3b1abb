"""``watchkeeper collector``: run a collector explicitly (containers, systemd, a central host)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.collector.local import LocalPaths, http_socket_for
from watchkeeper.collector.lock import AlreadyRunning
from watchkeeper.collector.process import CollectorPlan, run_collector
from watchkeeper.config import Address, load_settings, parse_address
from watchkeeper.runtime.runtime import DEFAULT_PREFIX
from watchkeeper.storage.factory import store_location


def command(
    listen: Annotated[
        list[str] | None,
        typer.Option(
            help="Where apps ship events: unix:PATH or tcp://HOST:PORT (repeatable). Default: "
            "WATCHKEEPER_COLLECTOR_LISTEN, else the local socket apps on this host look for."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address for the dashboard, API and /metrics.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port for them; 0 serves them on no port.")] = 8766,
    prefix: Annotated[str, typer.Option(help="The apps' Watchkeeper path prefix.")] = (
        DEFAULT_PREFIX
    ),
) -> None:
    """Aggregate and store the events of every app that ships here, and serve their view."""
    settings = load_settings()
    lock: Path | None = None
    if listen:
        try:
            addresses = [parse_address(text) for text in listen]
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--listen") from None
    elif settings.collector_listen:
        addresses = [parse_address(text) for text in settings.collector_listen]
    else:
        # The socket an app with WATCHKEEPER_COLLECTOR=auto looks for first: it joins this one
        # instead of starting its own.
        paths = LocalPaths.for_app(settings, prefix.rstrip("/"))
        addresses = [Address("unix", path=paths.intake)]
        lock = paths.lock
    unix = [address.path for address in addresses if address.path is not None]
    http_socket = http_socket_for(unix[0]) if unix else None
    plan = CollectorPlan(
        settings=settings,
        intake=addresses,
        http_socket=http_socket,
        http_port=(host, port) if port else None,
        prefix=prefix.rstrip("/"),
        lock=lock,
    )
    typer.echo(f"Store: {store_location(settings).description}")
    typer.echo("Taking events on: " + ", ".join(str(address) for address in addresses))
    if port:
        typer.echo(f"Dashboard, API and /metrics: http://{host}:{port}{plan.prefix}/")
    try:
        run_collector(plan)
    except AlreadyRunning:
        typer.echo("A collector for this app already runs on this host; nothing to do.", err=True)
        raise typer.Exit(1) from None
