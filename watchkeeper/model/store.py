"""The store's contract: what the flush worker writes (:class:`Sink`) and what the query
layer answers (:class:`Queries`).

A backend is one class implementing :class:`Store`. The recorder only needs :class:`Sink`, so a
user's test suite can swap in :class:`watchkeeper.testing.MemorySink` without a database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from watchkeeper.model.batch import Batch
from watchkeeper.model.error_groups import ErrorFlag, ErrorStatus
from watchkeeper.model.events import (
    Severity,
    SpanKind,
)
from watchkeeper.model.query import (
    LogFilter,
    Page,
    RetainedTable,
    Scope,
    SpanFilter,
    SpikeRule,
    TimeRange,
    TraceFilter,
)
from watchkeeper.model.rollups import Dimension, Level
from watchkeeper.model.stored import (
    ErrorGroup,
    ErrorGroupDetail,
    NameSummary,
    RequestUsage,
    SeriesPoint,
    SessionDetail,
    StoredLog,
    StoredMetric,
    StoredSession,
    StoredSpan,
    StoredValidation,
    TraceSummary,
    UsageRow,
)


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
        *,
        where: LogFilter = LogFilter(),
    ) -> Page[StoredLog]:
        """Log records newest first: at ``min_level`` and above, whose message holds ``text``
        (any case), of ``trace_id``, and matching ``where`` (full-text words and exact fields)."""
        ...

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
        self,
        time_range: TimeRange,
        scope: Scope,
        limit: int = 100,
        status: ErrorStatus | None = None,
        flag: ErrorFlag | None = None,
        spike: SpikeRule = SpikeRule(),
    ) -> list[ErrorGroup]:
        """Groups seen in the range, most frequent there first, each with its flags; only those
        of ``status`` or raising ``flag`` when given."""
        ...

    def error_group(
        self, group_id: str, time_range: TimeRange, scope: Scope, spike: SpikeRule = SpikeRule()
    ) -> ErrorGroupDetail | None: ...

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

    def set_error_status(self, group_id: str, status: ErrorStatus, now: float) -> bool:
        """Set an error group's status (``now``: when, epoch seconds); False if there is none."""
        ...
