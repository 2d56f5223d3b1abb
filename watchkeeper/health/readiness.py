"""Readiness: whether this instance should receive traffic now.

Ready means every required probe and every integration named in ``required_integrations`` is
healthy. Warnings stay ready (200); only a failure takes the instance out of rotation.
Watchkeeper's own trouble (its store away, its recorder dropping events) is a warning: a sick
monitoring store must not pull every replica out of a load balancer at once. An operator who
wants otherwise sets ``WATCHKEEPER_READINESS_INCLUDES_MONITORING``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from watchkeeper.health.probes import ProbeRegistry
from watchkeeper.health.status import Check, ComponentType, HealthStatus
from watchkeeper.health.traffic import ServiceHealth
from watchkeeper.recording.stats import DropReason, StatsSnapshot

SATURATION_WARN = 0.9
RECENT_DROPS_SECONDS = 60.0


class DropWatch:
    """Remembers when buffer-full drops last grew, so "dropped in the last minute" is answerable.

    The recorder only keeps a running total; growth is noticed whenever readiness is evaluated,
    which is at least as often as the orchestrator probes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = 0
        self._grew_at: float | None = None

    def dropped_recently(self, total: int, now: float | None = None) -> bool:
        current = time.monotonic() if now is None else now
        with self._lock:
            if total > self._seen:
                self._seen = total
                self._grew_at = current
            return self._grew_at is not None and current - self._grew_at <= RECENT_DROPS_SECONDS


def saturation_check(
    stats: StatsSnapshot, drops: DropWatch, now: datetime, can_fail: bool = False
) -> Check:
    depth, capacity = stats.buffer_depth, stats.buffer_capacity
    fill = depth / capacity if capacity else 0.0
    recent = drops.dropped_recently(stats.dropped.get(DropReason.BUFFER_FULL.value, 0))
    if depth >= capacity and recent:
        status = HealthStatus.FAIL if can_fail else HealthStatus.WARN
        output = "buffer full and events dropped in the last minute"
    elif fill >= SATURATION_WARN:
        status, output = HealthStatus.WARN, f"buffer {fill:.0%} full"
    else:
        status, output = HealthStatus.PASS, f"{depth} of {capacity} buffered"
    return Check(
        component_id="recorder",
        component_type=ComponentType.COMPONENT,
        status=status,
        observed_value=round(fill * 100, 1),
        observed_unit="%",
        time=now,
        output=output,
    )


def readiness_checks(
    stats: StatsSnapshot,
    drops: DropWatch,
    probes: ProbeRegistry,
    services: Mapping[str, ServiceHealth],
    required_integrations: list[str],
    monitoring_can_fail: bool = False,
    now: datetime | None = None,
) -> dict[str, list[Check]]:
    moment = now or datetime.now(UTC)
    checks: dict[str, list[Check]] = {
        "recorder:saturation": [saturation_check(stats, drops, moment, monitoring_can_fail)]
    }
    for probe in probes.probes:
        if probe.required:
            checks[probe.key] = [probe.check_now()]
    for name in required_integrations:
        service = services.get(name)
        if service is None:
            checks[f"{name}:required"] = [
                Check(
                    name,
                    ComponentType.COMPONENT,
                    HealthStatus.PASS,
                    time=moment,
                    output="no calls in the last 5 min",
                )
            ]
            continue
        for key, entries in service.checks.items():
            checks.setdefault(key, entries)
    return checks
