"""A runtime owning a store as a process would (a collector, ``watchkeeper serve``), for as long
as a test waits on what it does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from watchkeeper.config import Settings
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage.sql_store import SqlStore


def run_until(
    settings: Settings, store: SqlStore, done: Callable[[], bool], what: str, timeout: float = 60
) -> None:
    """Start a runtime owning ``store``, wait until ``done``, then stop it; fail after
    ``timeout`` seconds, saying ``what`` was awaited."""

    async def run() -> None:
        runtime = Runtime(settings, store=store, serve=False)
        await runtime.start()
        try:
            deadline = time.monotonic() + timeout
            while not done():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.05)
        finally:
            await runtime.stop()

    asyncio.run(run())
