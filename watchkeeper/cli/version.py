"""``watchkeeper version``."""

from __future__ import annotations

import typer

from watchkeeper._version import __version__


def command() -> None:
    """Print Watchkeeper's version."""
    typer.echo(f"watchkeeper {__version__}")
