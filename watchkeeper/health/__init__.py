"""Health endpoints in the IETF health-check format: traffic, probes, readiness, system figures."""

from watchkeeper.health.circuits import CircuitState, CircuitStateProvider, NoCircuits
from watchkeeper.health.monitor import HealthMonitor
from watchkeeper.health.probes import ProbeCheck, ProbeOutcome, ProbeRegistry
from watchkeeper.health.router import HealthComponent, health_router
from watchkeeper.health.status import HEALTH_JSON, Check, ComponentType, HealthReport, HealthStatus
from watchkeeper.health.store_probe import STORE_PROBE, StoreProbe, register_store_probe
from watchkeeper.health.system import SystemSampler, SystemSnapshot
from watchkeeper.health.thresholds import HealthThresholds, ThresholdBook
from watchkeeper.redaction import redact_settings

__all__ = [
    "HEALTH_JSON",
    "STORE_PROBE",
    "Check",
    "CircuitState",
    "CircuitStateProvider",
    "ComponentType",
    "HealthComponent",
    "HealthMonitor",
    "HealthReport",
    "HealthStatus",
    "HealthThresholds",
    "NoCircuits",
    "ProbeCheck",
    "ProbeOutcome",
    "ProbeRegistry",
    "StoreProbe",
    "SystemSampler",
    "SystemSnapshot",
    "ThresholdBook",
    "health_router",
    "redact_settings",
    "register_store_probe",
]
