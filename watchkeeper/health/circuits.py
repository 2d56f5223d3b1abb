"""Where circuit-breaker state enters health: an open circuit fails, a half-open one warns.

Watchkeeper has no circuit breakers of its own yet; whatever adds them implements
:class:`CircuitStateProvider` and passes it to the health router.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from watchkeeper.health.status import HealthStatus


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def health(self) -> HealthStatus:
        return _HEALTH[self]


_HEALTH = {
    CircuitState.CLOSED: HealthStatus.PASS,
    CircuitState.HALF_OPEN: HealthStatus.WARN,
    CircuitState.OPEN: HealthStatus.FAIL,
}


class CircuitStateProvider(Protocol):
    def circuit_states(self) -> Mapping[str, CircuitState]:
        """The state of every known circuit, by integration name. Must not block."""
        ...


class NoCircuits:
    """The default provider: no circuit breakers, so no circuit checks."""

    def circuit_states(self) -> Mapping[str, CircuitState]:
        return {}
