"""What a part of Watchkeeper provides to the runtime it runs in.

A component is started and stopped with the runtime (on the serving event loop, so it may create
tasks there), serves its routes from Watchkeeper's own application, never the host's, and may
add health probes. Resilience, alerts, logs, access and OTLP arrive as components too.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter


class Component(Protocol):
    @property
    def name(self) -> str:
        """A short name for logs and errors."""
        ...

    def router(self) -> APIRouter | None:
        """What it serves, with full paths inside Watchkeeper's application; ``None``: nothing."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
