"""Assembles the health documents from what is already known; nothing here waits on I/O.

Every answer is built from in-memory state (live windows, recorder counters, the latest probe
results and system sample), so the endpoints stay fast and truthful while dependencies hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psutil

from watchkeeper.config import Settings
from watchkeeper.health.circuits import CircuitStateProvider, NoCircuits
from watchkeeper.health.figures import metrics_document
from watchkeeper.health.probes import ProbeRegistry
from watchkeeper.health.readiness import DropWatch, readiness_checks, saturation_check
from watchkeeper.health.status import Check, ComponentType, HealthReport, HealthStatus
from watchkeeper.health.system import SystemSampler
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.health.traffic import JUDGED_WINDOW_SECONDS, ServiceHealth, judge_traffic
from watchkeeper.model.events import SpanKind
from watchkeeper.model.json import JsonValue
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import redact_settings, scrub_error

# A loop stalled this long delays every request on it by as much: worth a warning, not a fail,
# since the process still answers.
LOOP_LAG_WARN_SECONDS = 1.0


@dataclass
class HealthMonitor:
    recorder: Recorder
    settings: Settings
    probes: ProbeRegistry
    sampler: SystemSampler | None = None
    circuits: CircuitStateProvider = field(default_factory=NoCircuits)
    version: str | None = None
    thresholds: ThresholdBook = field(init=False)
    drops: DropWatch = field(init=False, default_factory=DropWatch)
    process_started_at: float = field(init=False)
    sections: dict[str, Callable[[], JsonValue]] = field(init=False, default_factory=dict)
    """More of the configuration, by name (resilience's policies), shown after the settings."""

    def __post_init__(self) -> None:
        self.thresholds = ThresholdBook.from_settings(self.settings)
        self.process_started_at = float(psutil.Process().create_time())

    @property
    def service_id(self) -> str:
        return self.settings.service

    def uptime_seconds(self) -> float:
        """Since the process started, not since Watchkeeper did: what an operator means."""
        return time.time() - self.process_started_at

    def _report(self, description: str, checks: dict[str, list[Check]]) -> HealthReport:
        # Outputs quote errors (a store's names its host and port): scrubbed, whoever reads.
        scrubbed = {
            key: [
                replace(check, output=scrub_error(check.output)) if check.output else check
                for check in entries
            ]
            for key, entries in checks.items()
        }
        return HealthReport(
            service_id=self.service_id,
            description=description,
            checks=scrubbed,
            version=self.version,
        )

    def services(self) -> dict[str, ServiceHealth]:
        """Integrations seen in the last 5 minutes, circuits, required names and probes."""
        kinds = {SpanKind.INTEGRATION.value}
        if self.settings.health_request_checks:
            kinds.add(SpanKind.REQUEST.value)
        services = judge_traffic(
            self.recorder.live.window(JUDGED_WINDOW_SECONDS),
            frozenset(kinds),
            self.thresholds,
            self.circuits.circuit_states(),
        )
        for probe in self.probes.probes:
            service = services.setdefault(probe.name, ServiceHealth(probe.name, {}))
            service.checks[probe.key] = [probe.check_now()]
        return dict(sorted(services.items()))

    def overall(self) -> HealthReport:
        now = datetime.now(UTC)
        checks: dict[str, list[Check]] = {}
        for service in self.services().values():
            checks.update(service.checks)
        checks["recorder:saturation"] = [saturation_check(self.recorder.stats(), self.drops, now)]
        checks.update(self._system_checks(now))
        return self._report(f"health of {self.service_id}", checks)

    def live(self) -> HealthReport:
        now = datetime.now(UTC)
        return self._report(
            f"liveness of {self.service_id}",
            {
                "uptime": [
                    Check(
                        "process",
                        ComponentType.SYSTEM,
                        HealthStatus.PASS,
                        round(self.uptime_seconds(), 3),
                        "s",
                        now,
                        "the event loop answered",
                    )
                ]
            },
        )

    def ready(self) -> HealthReport:
        checks = readiness_checks(
            self.recorder.stats(),
            self.drops,
            self.probes,
            self.services(),
            self.settings.required_integrations,
            self.settings.readiness_includes_monitoring,
        )
        return self._report(f"readiness of {self.service_id}", checks)

    def services_report(self) -> HealthReport:
        checks: dict[str, list[Check]] = {}
        for service in self.services().values():
            checks.update(service.checks)
        return self._report(f"services used by {self.service_id}", checks)

    def service_report(self, name: str) -> HealthReport | None:
        service = self.services().get(name)
        if service is None:
            return None
        return self._report(f"{name} as used by {self.service_id}", service.checks)

    def known_services(self) -> list[str]:
        return list(self.services())

    def metrics(self) -> dict[str, JsonValue]:
        return metrics_document(
            self.service_id,
            self.recorder.live,
            self.recorder.stats(),
            None if self.sampler is None else self.sampler.latest,
            self.uptime_seconds(),
        )

    def configuration(self) -> dict[str, JsonValue]:
        document = redact_settings(self.settings)
        for name, section in self.sections.items():
            document[name] = section()
        return document

    def _system_checks(self, now: datetime) -> dict[str, list[Check]]:
        checks: dict[str, list[Check]] = {
            "uptime": [
                Check(
                    "process",
                    ComponentType.SYSTEM,
                    HealthStatus.PASS,
                    round(self.uptime_seconds(), 3),
                    "s",
                    now,
                )
            ]
        }
        snapshot = None if self.sampler is None else self.sampler.latest
        if snapshot is None:
            return checks
        sampled = datetime.fromtimestamp(snapshot.sampled_at, UTC)
        for key, value in (
            ("cpu:utilization", snapshot.cpu_percent),
            ("memory:utilization", snapshot.memory_percent),
            ("disk:utilization", snapshot.disk_percent),
        ):
            checks[key] = [
                Check("system", ComponentType.SYSTEM, HealthStatus.PASS, value, "%", sampled)
            ]
        lag = snapshot.event_loop_lag_seconds
        lag_status = (
            HealthStatus.WARN
            if lag is not None and lag >= LOOP_LAG_WARN_SECONDS
            else HealthStatus.PASS
        )
        checks["eventLoop:lag"] = [
            Check(
                "process",
                ComponentType.SYSTEM,
                lag_status,
                None if lag is None else round(lag, 4),
                "s",
                sampled,
                "not measured yet" if lag is None else None,
            )
        ]
        return checks
