"""What a query asks for: a scope (everything, one organisation or one user), a time
range, filters and pages.

Every query takes a :class:`Scope` so that access control can narrow any query without
rewriting it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import (
    SpanKind,
    SpanStatus,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    """Which data a query may see: everything, one organisation, or one user (within an org)."""

    org_id: str | None = None
    user_id: str | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @classmethod
    def organisation(cls, org_id: str) -> Scope:
        return cls(org_id=org_id)

    @classmethod
    def user(cls, user_id: str, org_id: str | None = None) -> Scope:
        return cls(org_id=org_id, user_id=user_id)

    def within(self, org_id: str | None) -> Scope | None:
        """This scope narrowed to one organisation (``None``: not narrowed); ``None`` when the
        scope sees nothing of that organisation."""
        if org_id is None or org_id == self.org_id:
            return self
        if self.org_id is not None:
            return None
        return replace(self, org_id=org_id)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise QueryError("time range bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise QueryError(f"time range ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def last(cls, duration: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - duration, end)

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()


@dataclass(frozen=True, slots=True)
class SpanFilter:
    kind: SpanKind | None = None
    name: str | None = None
    status: SpanStatus | None = None
    user_id: str | None = None
    org_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of a list, newest first; pass ``next_cursor`` back to get the next page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Which traces to list.

    ``trace_id``, ``user_id`` and ``session_id`` match the trace's entry span; ``kind``, ``name``
    and ``errors_only`` match one span anywhere in the trace (all three the same span), so an
    error deep inside a request finds that request's trace.
    """

    trace_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    kind: SpanKind | None = None
    name: str | None = None
    errors_only: bool = False


class RetainedTable(StrEnum):
    SPANS = "spans"
    LOGS = "logs"
    METRICS = "metrics"
    MINUTE_ROLLUPS = "minute_rollups"
    HOUR_ROLLUPS = "hour_rollups"
    SNAPSHOTS = "snapshots"
    VALIDATIONS = "validations"
    SESSIONS = "sessions"
    """Kept while their last activity is within the spans' period."""
    ERROR_GROUPS = "error_groups"
    """Kept, like their counts, users and samples, while seen within the spans' period."""
    ERROR_COUNTS = "error_counts"
    ERROR_USERS = "error_users"
    ERROR_SAMPLES = "error_samples"
    WRITTEN_BATCHES = "written_batches"
    """The ids that keep a retried batch from being written twice; kept as long as spans."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What a log search narrows by, beside the level, substring and trace of ``Queries.logs``.

    ``query`` is full-text: every word in it (a run of letters and digits) must begin a word of
    the record's message, attributes or exception, in any order, whatever the case.
    """

    query: str | None = None
    logger: str | None = None
    service: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    error_group: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """When a group's rate spikes: at least ``min_count`` occurrences over the ``recent`` period
    ending with the window, and more than ``factor`` times what its rate over the ``baseline``
    period before that predicts."""

    recent: timedelta = timedelta(minutes=15)
    baseline: timedelta = timedelta(hours=24)
    factor: float = 3.0
    min_count: int = 10

    def __post_init__(self) -> None:
        if self.recent <= timedelta(0) or self.baseline <= timedelta(0):
            raise QueryError("a spike's recent and baseline periods must be positive")
        if self.factor <= 0 or self.min_count < 1:
            raise QueryError("a spike's factor must be positive and its minimum count at least 1")
