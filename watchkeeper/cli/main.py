"""``watchkeeper``: the command line. One module per command; this one wires them up.

Errors a user can fix (a bad setting, an unreachable store) are printed as advice and exit 2,
never as a traceback.
"""

from __future__ import annotations

import typer

from watchkeeper.cli import (
    alerts,
    collector,
    demo,
    keys,
    migrate,
    retention,
    serve,
    status,
    tail,
    version,
)
from watchkeeper.cli.advice import EXIT_PROBLEM
from watchkeeper.config import ConfigurationError
from watchkeeper.model.errors import StoreUnavailable

app = typer.Typer(
    name="watchkeeper",
    help="Watch a FastAPI app that calls AI services: traces, costs, health.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("demo")(demo.command)
app.command("version")(version.command)
app.command("migrate")(migrate.command)
app.command("retention")(retention.command)
app.command("status")(status.command)
app.command("serve")(serve.command)
app.command("collector")(collector.command)
app.add_typer(keys.app, name="keys")
app.add_typer(alerts.app, name="alerts")
app.command("tail")(tail.command)


def run() -> None:
    try:
        app()
    except ConfigurationError as error:
        _advise(str(error), "Fix the setting named above (environment variable or code) and retry.")
    except StoreUnavailable as error:
        _advise(
            f"Watchkeeper cannot use its store: {error}.",
            "Check that the database is running and reachable, or unset "
            "WATCHKEEPER_DATABASE_URL to use the local SQLite file.",
        )


def _advise(problem: str, advice: str) -> None:
    # Outside Typer's main loop, so typer.Exit would not be turned into an exit code here.
    typer.echo(f"watchkeeper: {problem}\n{advice}", err=True)
    raise SystemExit(EXIT_PROBLEM)
