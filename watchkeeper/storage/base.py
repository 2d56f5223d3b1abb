"""The store's contract: what the flush worker writes and what the query layer answers.

A backend is one class implementing :class:`Store`. The recorder only needs :class:`Sink`, so a
user's test suite can swap in :class:`watchkeeper.testing.MemorySink` without a database.

Every query takes a :class:`Scope` (everything, one organisation or one user) so that access
control can narrow any query without rewriting it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from watchkeeper.recording.model import (
    LogRecord,
    MetricPoint,
    SessionMark,
    Severity,
    Snapshot,
    Span,
    SpanKind,
    SpanStatus,
    ValidationResult,
)
from watchkeeper.storage.rollups import Dimension, Level, RollupDelta, RollupKey
from watchkeeper.storage.sessions import SessionDelta

T = TypeVar("T")


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused the write; the worker keeps the batch and retries."""


class BatchRejected(RuntimeError):
    """The store refused the batch because of what is in it; writing it again would fail again.

    Deliberately not a :class:`StoreUnavailable`: a worker that retries every unavailable store
    must drop (and count) a rejected batch, or one bad value would block every later flush.
    The message names the database's complaint (for example a value out of range).
    """


class QueryError(ValueError):
    """A query's arguments are invalid (bad cursor, reversed range); the message says which."""


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
class Batch:
    """One flush: written in a single transaction, so it is stored whole or not at all."""

    service: str
    instance: str
    spans: Sequence[Span] = ()
    logs: Sequence[LogRecord] = ()
    metrics: Sequence[MetricPoint] = ()
    snapshots: Sequence[Snapshot] = ()
    validations: Sequence[ValidationResult] = ()
    session_marks: Sequence[SessionMark] = ()
    rollups: Mapping[RollupKey, RollupDelta] = field(default_factory=dict)
    sessions: Mapping[str, SessionDelta] = field(default_factory=dict)

    def __len__(self) -> int:
        """Events in the batch (what the recorder counts as flushed)."""
        return (
            len(self.spans)
            + len(self.logs)
            + len(self.metrics)
            + len(self.snapshots)
            + len(self.validations)
            + len(self.session_marks)
        )


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
class StoredSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    name: str
    operation: str | None
    start: datetime
    duration: float
    status: str
    error_type: str | None
    error_message: str | None
    service: str
    instance: str
    user_id: str | None
    org_id: str | None
    session_id: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredLog:
    time: datetime
    level: int
    logger: str
    message: str
    trace_id: str | None
    span_id: str | None
    service: str
    instance: str
    user_id: str | None
    org_id: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredMetric:
    time: datetime
    name: str
    kind: str
    value: float
    service: str
    instance: str
    org_id: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NameSummary:
    """Totals for one (kind, name) over a time range; latencies in seconds."""

    kind: str
    name: str
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    cost_unknown: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    bucket: datetime
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    input_tokens: int
    output_tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Usage for one user, organisation or model over a time range."""

    value: str
    count: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float
    cost_unknown: int


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session's totals, merged from every batch (and process) that saw it."""

    session_id: str
    user_id: str | None
    org_id: str | None
    first_seen: datetime
    last_seen: datetime
    ended_at: datetime | None
    spans: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    time: datetime
    name: str
    data: dict[str, Any]
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    user_id: str | None
    org_id: str | None


@dataclass(frozen=True, slots=True)
class StoredValidation:
    """One validator run; ``observed`` is a number or text as recorded, or ``None``."""

    time: datetime
    validator: str
    target: str
    passed: bool
    observed: float | str | None
    expected: str
    severity: str
    message: str
    trace_id: str | None
    span_id: str | None
    session_id: str | None
    user_id: str | None
    org_id: str | None


@dataclass(frozen=True, slots=True)
class SessionDetail:
    """A session with everything recorded in it, each list oldest first (the timeline).

    A list stops at the store's cap for very long sessions; ``truncated`` then says so.
    """

    session: StoredSession
    spans: list[StoredSpan]
    snapshots: list[StoredSnapshot]
    validations: list[StoredValidation]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Error spans sharing (kind, name, error type); samples are from the last one stored."""

    kind: str
    name: str
    error_type: str | None
    count: int
    first_seen: datetime
    last_seen: datetime
    sample_message: str | None
    sample_trace_id: str


@dataclass(frozen=True, slots=True)
class RequestUsage:
    """AI usage of one route's requests in one bucket.

    A request's usage is that of the integration spans under it: its descendants, down to (not
    into) any request nested in the same trace, so a call is counted for one request only.
    """

    name: str
    bucket: datetime
    input_tokens: int
    output_tokens: int
    cost: float
    cost_unknown: int


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


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """A trace in the list: its entry span (a request, or a span without a parent) and totals
    over every span stored for the trace; ``cost`` sums its integration spans."""

    trace_id: str
    span_id: str
    kind: str
    name: str
    start: datetime
    duration: float
    status: str
    user_id: str | None
    org_id: str | None
    session_id: str | None
    spans: int
    errors: int
    cost: float
    cost_unknown: int


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


class Sink(Protocol):
    """Where the flush worker writes.

    ``write`` raises :class:`StoreUnavailable` when the store cannot take the batch now (retry
    it) and :class:`BatchRejected` when it never will (drop it).
    """

    def write(self, batch: Batch) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class Queries(Protocol):
    def overview(
        self, time_range: TimeRange, scope: Scope, kind: SpanKind | None = None
    ) -> list[NameSummary]: ...

    def kind_totals(self, time_range: TimeRange, scope: Scope) -> list[NameSummary]:
        """One summary per span kind over all its names (``name`` is empty)."""
        ...

    def series(
        self,
        time_range: TimeRange,
        scope: Scope,
        step: Level,
        kind: SpanKind | None = None,
        name: str | None = None,
    ) -> list[SeriesPoint]: ...

    def spans(
        self,
        time_range: TimeRange,
        scope: Scope,
        span_filter: SpanFilter = SpanFilter(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredSpan]: ...

    def trace(self, trace_id: str, scope: Scope) -> list[StoredSpan]: ...

    def usage(
        self, time_range: TimeRange, scope: Scope, dimension: Dimension, limit: int = 100
    ) -> list[UsageRow]: ...

    def logs(
        self,
        time_range: TimeRange,
        scope: Scope,
        min_level: int = 0,
        text: str | None = None,
        trace_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredLog]: ...

    def metrics(
        self, time_range: TimeRange, scope: Scope, name: str, limit: int = 1000
    ) -> list[StoredMetric]: ...

    def sessions(
        self,
        time_range: TimeRange,
        scope: Scope,
        search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredSession]:
        """Sessions last seen in the range, latest first; ``search`` is an id or user prefix."""
        ...

    def session(self, session_id: str, scope: Scope) -> SessionDetail | None: ...

    def validations(
        self,
        time_range: TimeRange,
        scope: Scope,
        failed_only: bool = False,
        severity: Severity | None = None,
        target: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[StoredValidation]: ...

    def error_groups(
        self, time_range: TimeRange, scope: Scope, limit: int = 100
    ) -> list[ErrorGroup]:
        """Most frequent first."""
        ...

    def request_usage(
        self, time_range: TimeRange, scope: Scope, step: Level, name: str | None = None
    ) -> list[RequestUsage]:
        """Usage per (route, bucket of ``step``) for requests starting in buckets that start
        inside the range (as :meth:`series` counts them), oldest bucket first."""
        ...

    def traces(
        self,
        time_range: TimeRange,
        scope: Scope,
        trace_filter: TraceFilter = TraceFilter(),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[TraceSummary]:
        """Traces whose entry span starts in the range, newest first."""
        ...


class Store(Sink, Queries, Protocol):
    """A full backend: written by the recorder, read by the API, kept tidy by retention."""

    def delete_expired(self, table: RetainedTable, before: datetime, batch_size: int) -> int:
        """Delete up to ``batch_size`` rows older than ``before``; return how many went."""
        ...

    def count(self, table: RetainedTable) -> int: ...
