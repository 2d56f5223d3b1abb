"""Resilience as a runtime component: it configures the process's policies and shared state
from the settings, keeps health's view of every breaker current, says in health whether the
shared state is reachable, hands resilience's events to the live feed, and serves
``/api/v1/resilience`` (each integration's effective policy and breaker state).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from watchkeeper.access.guard import Guard as AccessGuard
from watchkeeper.config import ConfigurationError, Settings
from watchkeeper.health.circuits import CircuitState
from watchkeeper.health.probes import ProbeOutcome, ProbeRegistry
from watchkeeper.health.status import HealthStatus
from watchkeeper.model.json import JsonValue
from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.engine import Guard
from watchkeeper.resilience.events import Events, Message
from watchkeeper.resilience.failover import FailoverState
from watchkeeper.resilience.loading import load_policies
from watchkeeper.resilience.registry import Resilience, get_resilience
from watchkeeper.resilience.state import MemoryState, StateBackend

logger = logging.getLogger("watchkeeper")

STATE_PROBE = "resilience-state"
REFRESH_SECONDS = 2.0
"""How often health's view of the breakers is read from the shared state (other replicas
open and close them too)."""
FEED_SECONDS = 1.0
FEED_LIMIT = 200
"""Events handed to the live feed per second at most; beyond that they are counted."""


def shared_state(settings: Settings, events: Events) -> StateBackend:
    """Redis (through the failover) when ``WATCHKEEPER_REDIS_URL`` is set, else memory."""
    if settings.redis_url is None:
        return MemoryState()
    try:
        redis_state = importlib.import_module("watchkeeper.resilience.redis_state")
    except ImportError as missing:
        raise ConfigurationError(f"WATCHKEEPER_REDIS_URL: {missing}") from None
    shared = redis_state.RedisState(settings.redis_url.get_secret_value(), settings.redis_timeout)
    return FailoverState(shared, events=events)


def policy_document(guard: Guard) -> dict[str, JsonValue]:
    hooks = guard.hooks
    return {
        "name": guard.name,
        "circuit": guard.circuit.value,
        "policy": guard.policy.model_dump(mode="json"),
        "hooks": {
            kind: None if hook is None else getattr(hook, "__qualname__", type(hook).__name__)
            for kind, hook in (
                ("fallback", hooks.fallback),
                ("refresh", hooks.refresh),
                ("key", hooks.key),
            )
        },
    }


class _Feed:
    """Resilience's events, batched for the live feed once a second."""

    def __init__(self) -> None:
        self.pending: deque[Message] = deque(maxlen=FEED_LIMIT)
        self.dropped = 0

    def offer(self, message: Message) -> None:
        if len(self.pending) == FEED_LIMIT:
            self.dropped += 1
        self.pending.append(message)

    def take(self) -> Message | None:
        if not self.pending:
            return None
        events = list(self.pending)
        self.pending.clear()
        dropped, self.dropped = self.dropped, 0
        return {"type": "resilience", "events": events, "dropped": dropped}


class ResilienceComponent:
    name = "resilience"

    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        probes: ProbeRegistry,
        auth: AccessGuard | None = None,
        api_prefix: str = "",
        resilience: Resilience | None = None,
    ) -> None:
        self.resilience = resilience or get_resilience()
        defaults, overrides = load_policies(settings)
        events = self.resilience.events
        self.state = shared_state(settings, events)
        self.resilience.configure(self.state, defaults, overrides, recorder)
        self._feed = _Feed()
        self.publish: Callable[[Message], None] | None = None
        """Where the live feed takes resilience's events (set by the runtime)."""
        events.listeners.append(self._feed.offer)
        if isinstance(self.state, FailoverState) and STATE_PROBE not in probes:
            probes.register(
                STATE_PROBE, self._check_state, interval=5.0, timeout=2.0, advisory=True
            )
        self._router: APIRouter | None = None
        if auth is not None:
            self._router = self._routes(auth, api_prefix)
        self._tasks: list[asyncio.Task[None]] = []

    # -- what health and the configuration read ---------------------------------------------

    def circuit_states(self) -> Mapping[str, CircuitState]:
        """Every integration with a breaker, as last seen; never waits."""
        return {
            guard.name: guard.circuit
            for guard in self.resilience.guards()
            if guard.policy.breaker.enabled
        }

    def shared(self) -> dict[str, JsonValue]:
        state = self.state
        if not isinstance(state, FailoverState):
            return {"kind": state.kind, "shared": False}
        since = state.down_since
        return {
            "kind": state.kind,
            "shared": since is None,
            "unreachable_since": since,
            "reason": state.reason,
            "outages": state.outages,
        }

    def configuration(self) -> dict[str, JsonValue]:
        """The effective policies, for ``/health/configuration`` and the API (no secrets:
        policies hold none, and the Redis URL is shown with the settings, redacted)."""
        return {
            "state": self.shared(),
            "integrations": [policy_document(guard) for guard in self.resilience.guards()],
        }

    async def _check_state(self) -> ProbeOutcome:
        state = self.state
        if not isinstance(state, FailoverState) or state.down_since is None:
            return ProbeOutcome(HealthStatus.PASS, "breakers, limits and cache shared in Redis")
        away = time.time() - state.down_since
        return ProbeOutcome(
            HealthStatus.WARN,
            f"Redis unreachable for {away:.0f} s ({state.reason}); each process uses its own "
            "breakers, limits and cache until it is back",
        )

    # -- the API ------------------------------------------------------------------------------

    def _routes(self, auth: AccessGuard, api_prefix: str) -> APIRouter:
        router = APIRouter(
            prefix=f"{api_prefix}/resilience", tags=["resilience"], dependencies=[Depends(auth)]
        )

        @router.get(
            "",
            response_class=JSONResponse,
            summary="Every integration's effective resilience policy and breaker",
        )
        def everything() -> JSONResponse:
            return JSONResponse(self.configuration())

        return router

    def router(self) -> APIRouter | None:
        return self._router

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._refresh_circuits()))
        self._tasks.append(asyncio.create_task(self._feed_live()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        events = self.resilience.events
        if self._feed.offer in events.listeners:
            events.listeners.remove(self._feed.offer)
        # The process's calls go on after the runtime stops: in memory, no longer in Redis.
        self.resilience.configure(MemoryState())

    async def _refresh_circuits(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self._read_circuits)
            except Exception:
                logger.exception("Watchkeeper could not read the circuit breakers' states")

    def _read_circuits(self) -> None:
        now = time.time()
        for guard in self.resilience.guards():
            if not guard.policy.breaker.enabled:
                continue
            view = self.state.circuit(guard.name)
            open_until = (
                view.changed_at + guard.policy.breaker.cool_down
                if view.state is CircuitState.OPEN
                else 0.0
            )
            guard.saw(view.state, open_until if open_until > now else 0.0)

    async def _feed_live(self) -> None:
        while True:
            await asyncio.sleep(FEED_SECONDS)
            message = self._feed.take()
            if message is not None and self.publish is not None:
                try:
                    self.publish(message)
                except Exception:
                    logger.exception("Watchkeeper could not hand resilience events to the feed")
