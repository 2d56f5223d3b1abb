"""What an alert rule says, validated: a signal over a window, thresholds, timing, routing.

Rules arrive from the API, the CLI, the rules file and the defaults; all go through
:class:`Rule`, so a wrong rule is refused the same way everywhere, with a message naming the
field. A rule's definition is stored as its JSON.
"""

from __future__ import annotations

import enum
import re

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.alerts.notification import Severity
from watchkeeper.model.error_groups import ErrorFlag

_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,79}$"
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class RuleError(ValueError):
    """A rule whose fields are each valid but do not fit together."""


class SignalKind(enum.StrEnum):
    ERROR_RATE = "error_rate"
    REQUEST_COUNT = "request_count"
    LATENCY_P50 = "latency_p50"
    LATENCY_P95 = "latency_p95"
    LATENCY_P99 = "latency_p99"
    INTEGRATION_HEALTH = "integration_health"
    CIRCUIT_STATE = "circuit_state"
    AI_COST = "ai_cost"
    BUDGET_USED = "budget_used"
    TOKENS = "tokens"
    VALIDATION_FAILURE_RATE = "validation_failure_rate"
    ERROR_GROUPS = "error_groups"
    RECORDER_DROPS = "recorder_drops"
    QUEUE_DEPTH = "queue_depth"
    MEMORY = "memory"
    SYSTEM_CPU = "system_cpu"
    DISK = "disk"
    METRIC = "metric"


class Comparison(enum.StrEnum):
    ABOVE = ">"
    AT_LEAST = ">="
    BELOW = "<"
    AT_MOST = "<="

    def breached(self, value: float, threshold: float) -> bool:
        match self:
            case Comparison.ABOVE:
                return value > threshold
            case Comparison.AT_LEAST:
                return value >= threshold
            case Comparison.BELOW:
                return value < threshold
            case Comparison.AT_MOST:
                return value <= threshold


class NoData(enum.StrEnum):
    """What a rule does when its signal has no data: clear it, keep the state, or alert."""

    OK = "ok"
    KEEP = "keep"
    ALERT = "alert"


class GroupBy(enum.StrEnum):
    """One alert per what: the whole signal, or each route, integration, queue or model seen."""

    NONE = "none"
    ROUTE = "route"
    INTEGRATION = "integration"
    QUEUE = "queue"
    MODEL = "model"


class BudgetPeriod(enum.StrEnum):
    DAY = "day"
    MONTH = "month"


class Signal(BaseModel):
    """What is measured, narrowed to a route, integration, model, user or organisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SignalKind
    route: str | None = Field(None, description="Only this route (request spans' name).")
    integration: str | None = Field(None, description="Only this integration.")
    queue: str | None = Field(
        None,
        description="Only this monitored queue's jobs: latency is their wait, error rate their "
        "failures, request count how many were taken.",
    )
    model: str | None = Field(None, description="Only this AI model.")
    user: str | None = None
    organisation: str | None = None
    validator: str | None = Field(
        None,
        description="validation_failure_rate: only this validator (e.g. minimum_score); "
        "unset: every validator.",
    )
    target: str | None = Field(None, description="validation_failure_rate: what was validated.")
    budget: BudgetPeriod | None = Field(
        None, description="budget_used: the period whose budget setting the cost is held to."
    )
    error_group: str | None = Field(
        None, description="error_groups: new, spike or regressed (default: new)."
    )
    metric: str | None = Field(
        None,
        description="metric: a recorded metric's name, such as a business KPI or a monitored "
        "queue's queue.NAME.size (counters are summed over the window, gauges read last).",
        max_length=200,
    )
    group_by: GroupBy = GroupBy.NONE
    min_count: int = Field(
        0, ge=0, description="Rates need this many events in the window, else it is no data."
    )

    def problems(self) -> list[str]:
        found = []
        if self.kind is SignalKind.BUDGET_USED and self.budget is None:
            found.append("a budget_used signal needs budget: day or month")
        if (self.kind is SignalKind.METRIC) != (self.metric is not None):
            found.append("metric names the metric of a metric signal, and of no other")
        if self.error_group is not None and self.error_group not in ERROR_GROUP_CHANGES:
            found.append(f"error_group must be one of {', '.join(ERROR_GROUP_CHANGES)}")
        return found


ERROR_GROUP_CHANGES = tuple(flag.value for flag in ErrorFlag)


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict: a JSON true is no threshold (pydantic would otherwise read it as 1.0).
    warning: float | None = Field(None, strict=True)
    critical: float | None = Field(None, strict=True)


class ChannelTiers(BaseModel):
    """Channel names per severity; each later tier is notified when the one before has gone
    unacknowledged for the rule's ``escalate_after_seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning: list[list[str]] = Field(default_factory=list)
    critical: list[list[str]] = Field(default_factory=list)

    def tiers(self, severity: Severity) -> list[list[str]]:
        return self.critical if severity is Severity.CRITICAL else self.warning

    def names(self) -> set[str]:
        return {name for tiers in (self.warning, self.critical) for tier in tiers for name in tier}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=_NAME_PATTERN,
        description="Unique; starts with a letter, then letters, digits, _ . : - (up to 80).",
    )
    signal: Signal
    window_seconds: int = Field(300, ge=60, le=31 * 86400)
    comparison: Comparison = Comparison.ABOVE
    thresholds: Thresholds
    for_seconds: int = Field(0, ge=0, le=86400, description="Pending this long before firing.")
    keep_firing_seconds: int = Field(
        0, ge=0, le=86400, description="Clear this long before a firing alert resolves."
    )
    resolve_threshold: float | None = Field(
        None,
        strict=True,
        description="Hysteresis: a firing alert resolves only once past this value.",
    )
    no_data: NoData = NoData.OK
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    channels: ChannelTiers = Field(default_factory=ChannelTiers)
    repeat_seconds: int = Field(3600, ge=10, le=7 * 86400)
    escalate_after_seconds: int | None = Field(None, ge=60, le=7 * 86400)

    def problems(self) -> list[str]:
        """What is wrong across fields, which a JSON schema cannot say: empty when the rule is
        sound. Every way in (API, CLI, rules file) asks, and refuses the rule with all of it."""
        found = [f"signal: {problem}" for problem in self.signal.problems()]
        for key in self.labels:
            if not _LABEL_NAME.fullmatch(key):
                found.append(f"label name {key!r} is not valid (letters, digits, _)")
            elif key in ("alertname", "severity"):
                found.append(f"label {key!r} is set by Watchkeeper itself")
        warning, critical = self.thresholds.warning, self.thresholds.critical
        if warning is None and critical is None:
            found.append("set a warning or a critical threshold, or both")
        if (
            warning is not None
            and critical is not None
            and warning != critical
            and self.comparison.breached(warning, critical)
        ):
            found.append(
                f"the critical threshold ({critical:g}) must be past the warning one "
                f"({warning:g}) in the rule's direction ({self.comparison.value})"
            )
        lowest = warning if warning is not None else critical
        if (
            self.resolve_threshold is not None
            and lowest is not None
            and self.comparison.breached(self.resolve_threshold, lowest)
        ):
            found.append(
                f"resolve_threshold ({self.resolve_threshold:g}) must be on the clear side "
                f"of the thresholds ({self.comparison.value} {lowest:g})"
            )
        return found

    def checked(self) -> Rule:
        """This rule, or :class:`RuleError` listing its problems."""
        found = self.problems()
        if found:
            raise RuleError(f"rule {self.name!r}: " + "; ".join(found))
        return self

    def level(self, value: float) -> Severity | None:
        """The severity this value breaches, critical first; ``None`` when it breaches none."""
        critical = self.thresholds.critical
        if critical is not None and self.comparison.breached(value, critical):
            return Severity.CRITICAL
        warning = self.thresholds.warning
        if warning is not None and self.comparison.breached(value, warning):
            return Severity.WARNING
        return None

    def threshold(self, severity: Severity) -> float | None:
        return (
            self.thresholds.critical if severity is Severity.CRITICAL else self.thresholds.warning
        )

    def clears(self, value: float) -> bool:
        """Whether a firing alert's value is clear enough to resolve (hysteresis)."""
        if self.level(value) is not None:
            return False
        if self.resolve_threshold is None:
            return True
        return not self.comparison.breached(value, self.resolve_threshold)


class RulesFile(BaseModel):
    """The rules file: rules, channels, and whether the default rules stay on."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    channels: dict[str, ChannelEntry] = Field(default_factory=dict)
    default_rules: bool = True
    disabled_rules: list[str] = Field(
        default_factory=list, description="Default rules turned off by name."
    )


class ChannelEntry(BaseModel):
    """A channel as the rules file or setting declares it; the kind's builder reads the rest."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(min_length=1)


RulesFile.model_rebuild()
