"""A stand-in for a shared state that goes down or slows down on cue, for tests.

``UnreliableState`` keeps its state in memory like a Redis would, and fails every operation
with ``ConnectionError`` while ``down`` (or first sleeps ``delay`` seconds), so a test can see
what :class:`~watchkeeper.resilience.failover.FailoverState` does without a Redis to break.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from limits import RateLimitItem

from watchkeeper.resilience.breaker import Admission, Transition
from watchkeeper.resilience.policy import BreakerPolicy, FallbackPolicy
from watchkeeper.resilience.state import Cached, CircuitView, MemoryState


class UnreliableState:
    kind = "unreliable"

    def __init__(self) -> None:
        self.inner = MemoryState()
        self.down = False
        self.delay = 0.0
        self.operations = 0

    def _check(self) -> None:
        self.operations += 1
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            raise ConnectionError("the shared state is down (on purpose)")

    async def _check_async(self) -> None:
        self.operations += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise ConnectionError("the shared state is down (on purpose)")

    def ping(self) -> None:
        self._check()

    def admit(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        self._check()
        return self.inner.admit(name, rules, now)

    async def admit_async(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        await self._check_async()
        return self.inner.admit(name, rules, now)

    def record(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        self._check()
        return self.inner.record(name, rules, now, ok, trial)

    async def record_async(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        await self._check_async()
        return self.inner.record(name, rules, now, ok, trial)

    def circuit(self, name: str) -> CircuitView:
        self._check()
        return self.inner.circuit(name)

    def force_open(self, name: str, at: float, reason: str) -> Transition | None:
        self._check()
        return self.inner.force_open(name, at, reason)

    def take(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        self._check()
        return self.inner.take(name, limit, cost, now)

    async def take_async(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        await self._check_async()
        return self.inner.take(name, limit, cost, now)

    def charge(self, name: str, limit: RateLimitItem, cost: int) -> None:
        self._check()
        self.inner.charge(name, limit, cost)

    async def charge_async(self, name: str, limit: RateLimitItem, cost: int) -> None:
        await self._check_async()
        self.inner.charge(name, limit, cost)

    def cached(self, name: str, key: str) -> Cached | None:
        self._check()
        return self.inner.cached(name, key)

    async def cached_async(self, name: str, key: str) -> Cached | None:
        await self._check_async()
        return self.inner.cached(name, key)

    def keep(self, name: str, key: str, value: Any, rules: FallbackPolicy, now: float) -> None:
        self._check()
        self.inner.keep(name, key, value, rules, now)

    async def keep_async(
        self, name: str, key: str, value: Any, rules: FallbackPolicy, now: float
    ) -> None:
        await self._check_async()
        self.inner.keep(name, key, value, rules, now)

    def close(self) -> None:
        self.inner.close()
