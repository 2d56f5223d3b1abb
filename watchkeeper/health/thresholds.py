"""When recent traffic to an integration counts as degraded (warn) or broken (fail)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from watchkeeper.config import ConfigurationError, Settings, ThresholdOverride


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    warn_error_rate: float = 0.05
    fail_error_rate: float = 0.25
    warn_p95_seconds: float = 2.0
    fail_p95_seconds: float = 10.0
    min_requests: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.warn_error_rate <= self.fail_error_rate <= 1:
            raise ValueError(
                "error rates must satisfy 0 <= warn <= fail <= 1, got "
                f"warn={self.warn_error_rate}, fail={self.fail_error_rate}"
            )
        if not 0 < self.warn_p95_seconds <= self.fail_p95_seconds:
            raise ValueError(
                "p95 limits must satisfy 0 < warn <= fail, got "
                f"warn={self.warn_p95_seconds}s, fail={self.fail_p95_seconds}s"
            )
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, got {self.min_requests}")

    def overridden_by(self, override: ThresholdOverride) -> HealthThresholds:
        return replace(self, **override.model_dump(exclude_none=True))


@dataclass(frozen=True, slots=True)
class ThresholdBook:
    """The global thresholds plus any per-integration overrides."""

    default: HealthThresholds = field(default_factory=HealthThresholds)
    overrides: Mapping[str, HealthThresholds] = field(default_factory=dict)

    def for_name(self, name: str) -> HealthThresholds:
        return self.overrides.get(name, self.default)

    @classmethod
    def from_settings(cls, settings: Settings) -> ThresholdBook:
        """Build and check the thresholds, naming the setting at fault when they contradict."""
        try:
            default = HealthThresholds(
                warn_error_rate=settings.health_warn_error_rate,
                fail_error_rate=settings.health_fail_error_rate,
                warn_p95_seconds=settings.health_warn_p95_seconds,
                fail_p95_seconds=settings.health_fail_p95_seconds,
                min_requests=settings.health_min_requests,
            )
        except ValueError as error:
            raise ConfigurationError(
                f"WATCHKEEPER_HEALTH_* thresholds contradict each other: {error}"
            ) from None
        overrides = {}
        for name, override in settings.integration_thresholds.items():
            try:
                overrides[name] = default.overridden_by(override)
            except ValueError as error:
                raise ConfigurationError(
                    f"WATCHKEEPER_INTEGRATION_THRESHOLDS[{name!r}]: {error}"
                ) from None
        return cls(default, overrides)
