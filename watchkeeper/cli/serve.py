"""``watchkeeper serve``: the dashboard, API, health and metrics over a shared store."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import store_location


def command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Serve Watchkeeper over the store that your app's replicas write into."""
    settings = load_settings()
    app = create_app(settings)
    typer.echo(f"Store: {store_location(settings).description}")
    typer.echo(f"Dashboard: http://{host}:{port}/  (log in with one of WATCHKEEPER_API_KEYS)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
