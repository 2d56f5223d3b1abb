"""The health document of draft-inadarei-api-health-check: statuses, checks and their JSON form.

Field names follow the draft (camelCase in JSON) so load balancers, Kubernetes and status pages
that understand ``application/health+json`` can read Watchkeeper's answers without an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from watchkeeper.model.json import JsonValue

HEALTH_JSON = "application/health+json"


class HealthStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def http_status(self) -> int:
        """200 for pass and warn (still serving), 503 for fail, as the draft recommends."""
        return 503 if self is HealthStatus.FAIL else 200

    @classmethod
    def worst(cls, statuses: Iterable[HealthStatus]) -> HealthStatus:
        """The most severe status; nothing to judge counts as pass."""
        return max(statuses, key=lambda status: status.severity, default=cls.PASS)


_SEVERITY = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


class ComponentType(StrEnum):
    """The draft's pre-defined component types."""

    COMPONENT = "component"
    DATASTORE = "datastore"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Check:
    """One measurement of one component: an entry in a ``checks`` list."""

    component_id: str
    component_type: ComponentType
    status: HealthStatus
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    output: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        document: dict[str, JsonValue] = {
            "componentId": self.component_id,
            "componentType": self.component_type.value,
            "status": self.status.value,
            "time": self.time.isoformat(),
        }
        if self.observed_value is not None:
            document["observedValue"] = self.observed_value
        if self.observed_unit is not None:
            document["observedUnit"] = self.observed_unit
        if self.output:
            document["output"] = self.output
        return document


Checks = Mapping[str, list[Check]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A whole health document; its status is the worst of its checks."""

    service_id: str
    description: str
    checks: Checks
    version: str | None = None

    @property
    def status(self) -> HealthStatus:
        return HealthStatus.worst(
            check.status for entries in self.checks.values() for check in entries
        )

    def to_json(self) -> dict[str, JsonValue]:
        document: dict[str, JsonValue] = {"status": self.status.value}
        if self.version is not None:
            document["version"] = self.version
        document["serviceId"] = self.service_id
        document["description"] = self.description
        document["checks"] = {
            key: [check.to_json() for check in entries] for key, entries in self.checks.items()
        }
        return document
