"""Health judged from recent traffic: error rate and p95 latency per integration (or route)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from watchkeeper.health.circuits import CircuitState
from watchkeeper.health.status import Check, ComponentType, HealthStatus
from watchkeeper.health.thresholds import HealthThresholds, ThresholdBook
from watchkeeper.recording.windows import WindowStats

JUDGED_WINDOW_SECONDS = 300
TOO_LITTLE_TRAFFIC = "too little traffic to judge"


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """Everything known about one named service: its checks keyed "name:measurement"."""

    name: str
    checks: dict[str, list[Check]]

    @property
    def status(self) -> HealthStatus:
        return HealthStatus.worst(
            check.status for entries in self.checks.values() for check in entries
        )


def traffic_checks(
    stats: WindowStats, thresholds: HealthThresholds, now: datetime
) -> dict[str, list[Check]]:
    """Error-rate and response-time checks for one (kind, name) over the judged window."""
    judged = stats.count >= thresholds.min_requests
    error_status = (
        _grade(stats.error_rate, thresholds.warn_error_rate, thresholds.fail_error_rate)
        if judged
        else HealthStatus.PASS
    )
    latency_status = (
        _grade(stats.p95, thresholds.warn_p95_seconds, thresholds.fail_p95_seconds)
        if judged and stats.p95 is not None
        else HealthStatus.PASS
    )
    window = f"last {stats.window_seconds // 60} min"
    traffic = f"{stats.errors} errors in {stats.count} calls, {window}"
    return {
        f"{stats.name}:errorRate": [
            Check(
                component_id=stats.name,
                component_type=ComponentType.COMPONENT,
                status=error_status,
                observed_value=round(stats.error_rate, 4),
                observed_unit="ratio",
                time=now,
                output=traffic if judged else f"{TOO_LITTLE_TRAFFIC} ({traffic})",
            )
        ],
        f"{stats.name}:responseTime": [
            Check(
                component_id=stats.name,
                component_type=ComponentType.COMPONENT,
                status=latency_status,
                observed_value=None if stats.p95 is None else round(stats.p95, 4),
                observed_unit="s (p95)",
                time=now,
                output=f"p95 over {window}" if judged else TOO_LITTLE_TRAFFIC,
            )
        ],
    }


def circuit_check(name: str, state: CircuitState, now: datetime) -> dict[str, list[Check]]:
    return {
        f"{name}:circuit": [
            Check(
                component_id=name,
                component_type=ComponentType.COMPONENT,
                status=state.health,
                observed_value=state.value,
                time=now,
                output=None if state is CircuitState.CLOSED else f"circuit is {state.value}",
            )
        ]
    }


def judge_traffic(
    window: Iterable[WindowStats],
    kinds: frozenset[str],
    thresholds: ThresholdBook,
    circuits: Mapping[str, CircuitState],
    now: datetime | None = None,
) -> dict[str, ServiceHealth]:
    """Health of every name of the given span kinds seen in ``window``, plus every circuit."""
    moment = now or datetime.now(UTC)
    services: dict[str, ServiceHealth] = {}
    for stats in window:
        if stats.kind not in kinds:
            continue
        service = services.setdefault(stats.name, ServiceHealth(stats.name, {}))
        service.checks.update(traffic_checks(stats, thresholds.for_name(stats.name), moment))
    for name, state in circuits.items():
        service = services.setdefault(name, ServiceHealth(name, {}))
        service.checks.update(circuit_check(name, state, moment))
    return services


def _grade(value: float, warn_at: float, fail_at: float) -> HealthStatus:
    if value >= fail_at:
        return HealthStatus.FAIL
    if value >= warn_at:
        return HealthStatus.WARN
    return HealthStatus.PASS
