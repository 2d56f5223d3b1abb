"""How every command reports a problem the user can fix: a short paragraph on stderr, exit 2."""

from __future__ import annotations

from typing import NoReturn

import typer

EXIT_PROBLEM = 2


def fail(problem: str, advice: str) -> NoReturn:
    """Print ``problem`` and what to do about it, then exit 2 (no traceback: nothing is broken)."""
    typer.echo(f"watchkeeper: {problem}\n{advice}", err=True)
    raise typer.Exit(EXIT_PROBLEM)
