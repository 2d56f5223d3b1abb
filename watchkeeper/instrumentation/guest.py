"""How Watchkeeper sits in a host app: which paths it answers, and its start and stop.

The request middleware calls a :class:`Guest` for the paths Watchkeeper serves (its own
application answers them, with its own exception handlers and OpenAPI document, so the host's are
never touched) and around the host's ASGI lifespan: Watchkeeper starts before the host's start-up
and stops — flushing what it recorded — after the host's shutdown, which servers run once they
have drained the requests in flight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

ROOT_PATHS = ("/health", "/livez", "/readyz", "/metrics")
"""Served at the root for load balancers and scrapers, unless the host has a route there."""


@dataclass
class Guest:
    app: ASGIApp
    """Watchkeeper's own application, answering every path below :attr:`prefixes`."""
    prefixes: tuple[str, ...]
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    host_started: Callable[[], None] = lambda: None
    """Called once the host's own start-up has completed."""

    def serves(self, path: str) -> bool:
        """Whether ``path`` is Watchkeeper's: one of its prefixes, on whole segments."""
        for prefix in self.prefixes:
            if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", "/"):
                return True
        return False


def paths_the_host_serves(routes: Sequence[BaseRoute], paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` one of the host's routes answers (fully or with 405) for a GET."""
    taken = set()
    for path in paths:
        scope: Scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        for route in routes:
            try:
                match, _ = route.matches(scope)
            except Exception:
                continue
            if match is not Match.NONE:
                taken.add(path)
                break
    return taken
