"""Shared state that never blocks or fails a call: Redis while it answers, this process's
memory while it does not.

The first Redis error or timeout (the clients' socket timeouts bound how long one may take)
switches every operation to memory at once; from then on no call waits on Redis. A background
thread pings it; once it answers, breakers this process opened meanwhile are opened in Redis
too (the other replicas learn what this one saw), and Redis is used again. Health says all
this (the component's probe reads :attr:`FailoverState.down_since`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from limits import RateLimitItem

from watchkeeper.health.circuits import CircuitState
from watchkeeper.redaction import scrub_error
from watchkeeper.resilience.breaker import Admission, Transition
from watchkeeper.resilience.events import Events
from watchkeeper.resilience.policy import BreakerPolicy, FallbackPolicy
from watchkeeper.resilience.state import (
    Cached,
    CircuitView,
    MemoryState,
    StateBackend,
    Unstorable,
)

logger = logging.getLogger("watchkeeper")

RECHECK_SECONDS = 1.0


class SharedState(StateBackend, Protocol):
    def ping(self) -> None: ...


class FailoverState:
    """A :class:`StateBackend` over ``shared`` that falls back to ``local``."""

    def __init__(
        self,
        shared: SharedState,
        local: MemoryState | None = None,
        events: Events | None = None,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.shared = shared
        self.local = local or MemoryState()
        self.kind = shared.kind
        self.events = events
        self.recheck = recheck
        self.down_since: float | None = None
        self.reason: str | None = None
        self.outages = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- switching ------------------------------------------------------------------------------

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            if self.down_since is not None or self._closed.is_set():
                return
            self.down_since = time.time()
            self.reason = scrub_error(f"{type(error).__name__}: {error}")
            self.outages += 1
            self._watcher = threading.Thread(
                target=self._watch, name="watchkeeper-resilience-redis", daemon=True
            )
            self._watcher.start()
        logger.warning(
            "Watchkeeper: resilience's shared state is unreachable (%s); breakers, rate limits "
            "and cached answers use this process's memory until it is back",
            self.reason,
        )
        if self.events is not None:
            self.events.publish("state", "", shared=False, reason=self.reason)

    def _watch(self) -> None:
        while not self._closed.wait(self.recheck):
            try:
                self.shared.ping()
                self._resync()
            except Exception:
                continue
            with self._lock:
                self.down_since = None
                self.reason = None
            logger.info("Watchkeeper: resilience's shared state is reachable again")
            if self.events is not None:
                self.events.publish("state", "", shared=True)
            return

    def _resync(self) -> None:
        """Tell the shared state about the breakers this process opened while it was away."""
        for name, view in self.local.breakers().items():
            if view.state is CircuitState.OPEN:
                self.shared.force_open(name, view.changed_at, "opened while Redis was unreachable")

    def _either(self, operation: str, *arguments: Any) -> Any:
        if self.down_since is None:
            try:
                return getattr(self.shared, operation)(*arguments)
            except Exception as error:
                self._failed(error)
        return getattr(self.local, operation)(*arguments)

    async def _either_async(self, operation: str, *arguments: Any) -> Any:
        if self.down_since is None:
            try:
                return await getattr(self.shared, operation)(*arguments)
            except Exception as error:
                self._failed(error)
        return await getattr(self.local, operation)(*arguments)

    # -- the backend ----------------------------------------------------------------------------

    def admit(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        admission: Admission = self._either("admit", name, rules, now)
        return admission

    async def admit_async(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        admission: Admission = await self._either_async("admit_async", name, rules, now)
        return admission

    def record(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        change: Transition | None = self._either("record", name, rules, now, ok, trial)
        return change

    async def record_async(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        change: Transition | None = await self._either_async(
            "record_async", name, rules, now, ok, trial
        )
        return change

    def circuit(self, name: str) -> CircuitView:
        view: CircuitView = self._either("circuit", name)
        return view

    def force_open(self, name: str, at: float, reason: str) -> Transition | None:
        change: Transition | None = self._either("force_open", name, at, reason)
        return change

    def take(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        wait: float = self._either("take", name, limit, cost, now)
        return wait

    async def take_async(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        wait: float = await self._either_async("take_async", name, limit, cost, now)
        return wait

    def charge(self, name: str, limit: RateLimitItem, cost: int) -> None:
        self._either("charge", name, limit, cost)

    async def charge_async(self, name: str, limit: RateLimitItem, cost: int) -> None:
        await self._either_async("charge_async", name, limit, cost)

    def cached(self, name: str, key: str) -> Cached | None:
        # Answers Redis could not hold (not JSON, or kept during an outage) are in memory.
        found: Cached | None = self._either("cached", name, key)
        return found if found is not None else self.local.cached(name, key)

    async def cached_async(self, name: str, key: str) -> Cached | None:
        found: Cached | None = await self._either_async("cached_async", name, key)
        return found if found is not None else self.local.cached(name, key)

    def keep(self, name: str, key: str, value: object, rules: FallbackPolicy, now: float) -> None:
        if self.down_since is None:
            try:
                self.shared.keep(name, key, value, rules, now)
                return
            except Unstorable:
                pass  # not JSON: this process keeps it
            except Exception as error:
                self._failed(error)
        self.local.keep(name, key, value, rules, now)

    async def keep_async(
        self, name: str, key: str, value: object, rules: FallbackPolicy, now: float
    ) -> None:
        if self.down_since is None:
            try:
                await self.shared.keep_async(name, key, value, rules, now)
                return
            except Unstorable:
                pass
            except Exception as error:
                self._failed(error)
        self.local.keep(name, key, value, rules, now)

    def close(self) -> None:
        self._closed.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(self.recheck + 1)
        self.shared.close()
        self.local.close()
