"""What the store answers: stored spans, logs, metrics, sessions and their summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
    session_id: str | None = None
    exception_type: str | None = None
    exception: str | None = None
    error_group: str | None = None
    """The error group the record belongs to (an exception, or a warning's template)."""
    source: str | None = None
    """The file the record was read from, for records of ``watchkeeper tail``."""


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
    """Errors sharing a fingerprint, with their figures over the window asked about.

    ``count`` and ``series`` are in the window (``series`` in equal buckets, oldest first, for a
    sparkline); ``total``, ``users``, first and last seen over everything retained. ``flags``
    say why the group deserves attention now (see ``model.error_groups.ErrorFlag``).
    """

    id: str
    source: str
    basis: str
    title: str
    error_type: str | None
    culprit: str | None
    status: str
    first_seen: datetime
    last_seen: datetime
    count: int
    total: int
    users: int
    flags: list[str]
    series: list[int]
    sample_trace_id: str | None
    sample_message: str | None
    grouping_version: int


@dataclass(frozen=True, slots=True)
class StoredErrorSample:
    time: datetime
    trace_id: str | None
    span_id: str | None
    message: str
    detail: str | None
    user_id: str | None
    org_id: str | None
    session_id: str | None


@dataclass(frozen=True, slots=True)
class ErrorGroupDetail:
    """One group: its figures, its stack (in-app frames, innermost last), recent samples."""

    group: ErrorGroup
    frames: list[tuple[str, str]]
    samples: list[StoredErrorSample]
    fingerprints: list[str]


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
