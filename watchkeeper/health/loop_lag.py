"""Event-loop lag: how late a 0.5 s sleep on the app's loop wakes up.

A loop that wakes late is running blocking code between awaits; every request on it waits too.
Only the overshoot is seen, so a stall of S seconds reads as anything from S - 0.5 s to S.
"""

from __future__ import annotations

import asyncio
import threading
import time

LAG_PROBE_SLEEP = 0.5


class LoopLagMonitor:
    """Measured on the app's loop; read from the sampler thread, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worst: float | None = None
        self._last: float | None = None

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(LAG_PROBE_SLEEP)
            self._record(max(0.0, time.monotonic() - started - LAG_PROBE_SLEEP))

    def _record(self, lag: float) -> None:
        with self._lock:
            self._last = lag
            self._worst = lag if self._worst is None else max(self._worst, lag)

    def take_worst(self) -> float | None:
        """The worst lag since the previous call (so a brief stall between samples is seen)."""
        with self._lock:
            worst, self._worst = self._worst, None
            return worst if worst is not None else self._last
