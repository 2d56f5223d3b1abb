"""A collector process: the runtime's pipeline fed by apps' frames, serving Watchkeeper's app.

Run by ``watchkeeper collector`` (containers, systemd), by ``python -m watchkeeper.collector``
(the local collector an app starts), and, for its intake only, inside ``watchkeeper serve``.
It holds its lock file for as long as it runs, which tells apps that it exists.

CPU: a child inherits its parent's CPU affinity, so a collector started by an app pinned to one
core would compete with it there. The collector therefore widens its affinity to every CPU the
machine allows, and lowers its own priority a little, so that on a shared core the app's
requests come first and the collector's work waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from watchkeeper.collector.intake import IntakeComponent
from watchkeeper.collector.lock import take_lock
from watchkeeper.config import Address, Settings
from watchkeeper.instrumentation.pricing import install_pricing
from watchkeeper.runtime.runtime import DEFAULT_PREFIX, Runtime

logger = logging.getLogger("watchkeeper")

IDLE_CHECK_SECONDS = 1.0
FIRST_CONNECTION_GRACE_SECONDS = 60.0
"""How long a new collector waits for its first app: the one that started it may be slow."""
NICENESS = 5


@dataclass(frozen=True, slots=True)
class CollectorPlan:
    settings: Settings
    intake: Sequence[Address]
    http_socket: Path | None = None
    """Where Watchkeeper's application is served to the apps on this host."""
    http_port: tuple[str, int] | None = None
    prefix: str = DEFAULT_PREFIX
    lock: Path | None = None
    idle_exit_seconds: float | None = None
    """Leave once no app has been connected for this long (the local collector)."""


def run_collector(plan: CollectorPlan, held_lock: int | None = None) -> None:
    """Run until a signal (or, for the local collector, until no app is left).

    ``held_lock`` is the descriptor of a lock the caller took already; else ``plan.lock`` is
    taken here (:class:`~watchkeeper.collector.lock.AlreadyRunning` if another holds it).
    """
    lock = held_lock
    if lock is None and plan.lock is not None:
        lock = take_lock(plan.lock)
    try:
        _leave_the_apps_core()
        asyncio.run(_serve(plan))
    finally:
        if lock is not None:
            os.close(lock)


async def _serve(plan: CollectorPlan) -> None:
    runtime = Runtime(plan.settings, prefix=plan.prefix)
    intake = IntakeComponent.from_settings(runtime.recorder, plan.settings, plan.intake)
    runtime.add(intake)
    # Prices come from the apps' models: priced here, off the apps' cores.
    install_pricing(runtime.recorder)
    servers = []
    if plan.http_socket is not None:
        servers.append(uvicorn.Server(_server_config(runtime, uds=str(plan.http_socket))))
    if plan.http_port is not None:
        host, port = plan.http_port
        servers.append(uvicorn.Server(_server_config(runtime, host=host, port=port)))
    await runtime.start()
    watchdog = None
    try:
        if plan.idle_exit_seconds is not None:
            watchdog = asyncio.create_task(
                _leave_when_idle(intake, servers, plan.idle_exit_seconds)
            )
        if servers:
            await asyncio.gather(*(server.serve() for server in servers))
        else:
            await _until_signalled()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await runtime.stop()
        if plan.http_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                plan.http_socket.unlink()


def _server_config(runtime: Runtime, **where: object) -> uvicorn.Config:
    return uvicorn.Config(
        runtime.app,
        lifespan="off",  # the runtime is started and stopped here, once for all servers
        log_level="warning",
        access_log=False,
        **where,  # type: ignore[arg-type]
    )


async def _leave_when_idle(
    intake: IntakeComponent, servers: Sequence[uvicorn.Server], idle_seconds: float
) -> None:
    patience = max(idle_seconds, FIRST_CONNECTION_GRACE_SECONDS)
    while True:
        await asyncio.sleep(IDLE_CHECK_SECONDS)
        if intake.frames or intake.connections:
            patience = idle_seconds
        if intake.connections == 0 and time.monotonic() - intake.idle_since >= patience:
            logger.info("No app has been connected for %.0f s: the collector leaves.", patience)
            for server in servers:
                server.should_exit = True
            return


async def _until_signalled() -> None:
    await asyncio.Event().wait()


def _leave_the_apps_core() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
