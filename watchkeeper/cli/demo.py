"""``watchkeeper demo``: see what Watchkeeper is for, with no API keys and no network."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Requests per second the simulated users send.")
    ] = 4.0,
    port: Annotated[int, typer.Option(help="Port for the demo app and its dashboard.")] = 8000,
    traffic: Annotated[bool, typer.Option(help="Send simulated traffic.")] = True,
    cycle: Annotated[
        float,
        typer.Option(
            help="Seconds of one cycle of simulated trouble: a flaky service, then an outage."
        ),
    ] = 90.0,
) -> None:
    """Run a small AI guidance app, instrumented, under simulated traffic, with the dashboard."""
    if rate <= 0:
        raise typer.BadParameter("must be more than 0", param_hint="--rate")
    if cycle <= 0:
        raise typer.BadParameter("must be more than 0", param_hint="--cycle")
    try:
        # Imported here: the demo needs its own extra, the other commands must work without it.
        from watchkeeper.demo.run import DemoOptions, run_demo  # noqa: PLC0415
    except ImportError as error:
        typer.echo(
            f"watchkeeper demo needs {error.name or 'its extra packages'}: "
            "pip install 'watchkeeper[demo]'",
            err=True,
        )
        raise typer.Exit(2) from None
    run_demo(
        DemoOptions(duration=duration, rate=rate, port=port, traffic=traffic, cycle_seconds=cycle)
    )
