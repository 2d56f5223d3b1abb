"""Alerts as the evaluator and the API see them: stored rules, alerts, silences, deliveries."""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.rules import Rule


class AlertState(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class RuleSource(enum.StrEnum):
    DEFAULT = "default"
    FILE = "file"
    API = "api"


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: Rule
    enabled: bool
    source: RuleSource
    created_at: float
    updated_at: float
    updated_by: str | None


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """Stable across processes and restarts: a hash of the rule's name and sorted labels."""
    text = json.dumps([rule, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    """One alert: a rule and label set from its first breach until it resolves."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: AlertState
    severity: Severity
    value: float | None
    peak_value: float | None
    threshold: float | None
    pending_since: float
    evaluated_at: float
    fired_at: float | None = None
    clear_since: float | None = None
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    tier: int = 0
    notified_at: float | None = None
    id: int | None = None


class AlertEvent(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    SEVERITY = "severity"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    time: float
    event: AlertEvent
    severity: str | None = None
    value: float | None = None
    actor: str | None = None
    note: str | None = None


class MatchOp(enum.StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"


class Matcher(BaseModel):
    """A label matcher, as Alertmanager's: name, operator and value (a full-match regex)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    op: MatchOp = MatchOp.EQUAL
    value: str

    @model_validator(mode="after")
    def _regex_compiles(self) -> Self:
        if self.op is MatchOp.REGEX:
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(f"matcher {self.name}=~{self.value!r}: {error}") from None
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = labels.get(self.name, "")
        match self.op:
            case MatchOp.EQUAL:
                return present == self.value
            case MatchOp.NOT_EQUAL:
                return present != self.value
            case MatchOp.REGEX:
                return re.fullmatch(self.value, present) is not None


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def covers(self, labels: Mapping[str, str], now: float) -> bool:
        return (
            self.starts_at <= now < self.ends_at
            and bool(self.matchers)
            and all(matcher.matches(labels) for matcher in self.matchers)
        )


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    alert_id: int
    channel: str
    group_key: str
    payload: str
    created_at: float
    status: DeliveryStatus
    attempts: int
    error: str | None
    sent_at: float | None
