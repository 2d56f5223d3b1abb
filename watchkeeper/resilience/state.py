"""Where breakers, rate-limit counters and cached answers live: the backend contract and the
in-memory backend, which every process has and which stands in whenever Redis cannot answer.

Each operation has a blocking and an ``async`` form: the Redis backend must not block an event
loop, while the in-memory one never waits and answers both alike.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.breaker import (
    Admission,
    BreakerRecord,
    Transition,
    admit,
    force_open,
    record_outcome,
)
from watchkeeper.resilience.policy import BreakerPolicy, FallbackPolicy


class Unstorable(TypeError):
    """An answer a shared backend cannot hold (not JSON): the process's memory keeps it."""


@dataclass(frozen=True, slots=True)
class Cached:
    value: object
    stored_at: float


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: CircuitState
    changed_at: float


CLOSED_VIEW = CircuitView(CircuitState.CLOSED, 0.0)


class StateBackend(Protocol):
    """Shared state for every guarded integration of a process.

    ``take`` returns 0 when the rate limit had room (and took it), else the seconds until it
    may; ``charge`` takes what was used even when the limit had less room (tokens are known only
    after the call). Times are Unix seconds from the caller's clock.
    """

    kind: str

    def admit(self, name: str, rules: BreakerPolicy, now: float) -> Admission: ...

    async def admit_async(self, name: str, rules: BreakerPolicy, now: float) -> Admission: ...

    def record(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None: ...

    async def record_async(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None: ...

    def circuit(self, name: str) -> CircuitView: ...

    def force_open(self, name: str, at: float, reason: str) -> Transition | None: ...

    def take(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float: ...

    async def take_async(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float: ...

    def charge(self, name: str, limit: RateLimitItem, cost: int) -> None: ...

    async def charge_async(self, name: str, limit: RateLimitItem, cost: int) -> None: ...

    def cached(self, name: str, key: str) -> Cached | None: ...

    async def cached_async(self, name: str, key: str) -> Cached | None: ...

    def keep(
        self, name: str, key: str, value: object, rules: FallbackPolicy, now: float
    ) -> None: ...

    async def keep_async(
        self, name: str, key: str, value: object, rules: FallbackPolicy, now: float
    ) -> None: ...

    def close(self) -> None: ...


class MemoryState:
    """This process's own state: breakers and caches in dictionaries, limits' memory storage."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, BreakerRecord] = {}
        self._caches: dict[str, OrderedDict[str, Cached]] = {}
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    # -- breakers ---------------------------------------------------------------------------

    def admit(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        with self._lock:
            record = self._breakers.get(name)
            if record is None:
                record = self._breakers[name] = BreakerRecord()
            return admit(name, record, rules, now)

    async def admit_async(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        return self.admit(name, rules, now)

    def record(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        with self._lock:
            record = self._breakers.get(name)
            if record is None:
                record = self._breakers[name] = BreakerRecord()
            return record_outcome(name, record, rules, now, ok, trial)

    async def record_async(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        return self.record(name, rules, now, ok, trial)

    def circuit(self, name: str) -> CircuitView:
        record = self._breakers.get(name)
        return CLOSED_VIEW if record is None else CircuitView(record.state, record.changed_at)

    def breakers(self) -> dict[str, CircuitView]:
        with self._lock:
            return {
                name: CircuitView(record.state, record.changed_at)
                for name, record in self._breakers.items()
            }

    def force_open(self, name: str, at: float, reason: str) -> Transition | None:
        with self._lock:
            record = self._breakers.setdefault(name, BreakerRecord())
            return force_open(name, record, at, reason)

    # -- rate limits ------------------------------------------------------------------------

    def take(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        if self._limiter.hit(limit, name, cost=cost):
            return 0.0
        return _until_room(self._limiter.get_window_stats(limit, name).reset_time, now)

    async def take_async(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        return self.take(name, limit, cost, now)

    def charge(self, name: str, limit: RateLimitItem, cost: int) -> None:
        if cost > 0 and not self._limiter.hit(limit, name, cost=cost):
            remaining = self._limiter.get_window_stats(limit, name).remaining
            if remaining > 0:
                self._limiter.hit(limit, name, cost=remaining)

    async def charge_async(self, name: str, limit: RateLimitItem, cost: int) -> None:
        self.charge(name, limit, cost)

    # -- cached answers ---------------------------------------------------------------------

    def cached(self, name: str, key: str) -> Cached | None:
        with self._lock:
            entries = self._caches.get(name)
            return None if entries is None else entries.get(key)

    async def cached_async(self, name: str, key: str) -> Cached | None:
        return self.cached(name, key)

    def keep(self, name: str, key: str, value: object, rules: FallbackPolicy, now: float) -> None:
        with self._lock:
            entries = self._caches.setdefault(name, OrderedDict())
            entries[key] = Cached(value, now)
            entries.move_to_end(key)
            while len(entries) > rules.max_entries:
                entries.popitem(last=False)

    async def keep_async(
        self, name: str, key: str, value: object, rules: FallbackPolicy, now: float
    ) -> None:
        self.keep(name, key, value, rules, now)

    def close(self) -> None:
        """Nothing to release: memory goes with the process."""


def _until_room(reset_time: float, now: float) -> float:
    # A limit that is full always has some wait, however small, so callers never spin.
    return max(reset_time - now, 0.001)
