"""Error groups built from a batch: one delta per fingerprint, merged by the store.

Computed where a batch is written (the collector's flush pipeline), never on the request path.
Every failed span and every log record with an exception is an error; log lines at WARNING and
above without one are grouped by template, so repeated warnings become a pattern too. A failure
that ends several nested spans of a trace with the same exception counts once, for the innermost
span, which closed (and was buffered) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from itertools import compress
from operator import attrgetter

from watchkeeper.model.events import Frames, LogLevel, LogRecord, Span, SpanKind, SpanStatus
from watchkeeper.model.grouping import (
    FINGERPRINT,
    ErrorSource,
    Fingerprint,
    error_fingerprint,
    exception_value,
    fingerprint_of,
    template_fingerprint,
)
from watchkeeper.model.ids import format_span_id, format_trace_id

MINUTE = 60
_status = attrgetter("status")
_FAILED = SpanStatus.ERROR.__eq__


class ErrorStatus(StrEnum):
    """Where a group stands. The store sets ``new`` and ``regressed``; people set the rest."""

    NEW = "new"
    ONGOING = "ongoing"
    REGRESSED = "regressed"
    """Resolved, then seen again."""
    RESOLVED = "resolved"
    IGNORED = "ignored"


SETTABLE_STATUSES = frozenset({ErrorStatus.ONGOING, ErrorStatus.RESOLVED, ErrorStatus.IGNORED})
"""What a person may set through the API: ``new`` and ``regressed`` are observations."""


class ErrorFlag(StrEnum):
    """Why a group deserves attention now; what alert rules fire on."""

    NEW = "new"
    """First seen within the window asked about."""
    SPIKE = "spike"
    """Its rate over the recent period is well above its baseline."""
    REGRESSED = "regressed"
    """It was resolved and has come back."""


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """One occurrence kept as an example: where to find it, and what it said."""

    time: float
    trace_id: str | None
    span_id: str | None
    message: str
    detail: str | None
    """The traceback text of a log record, when it had one."""
    user_id: str | None
    org_id: str | None
    session_id: str | None


@dataclass(slots=True)
class ErrorDelta:
    """A batch's occurrences of one group."""

    fingerprint: Fingerprint
    source: ErrorSource
    first_seen: float
    last_seen: float
    count: int = 0
    minutes: dict[tuple[int, str], int] = field(default_factory=dict)
    """Occurrences per (minute start, organisation or "")."""
    users: dict[str, float] = field(default_factory=dict)
    """Users affected, with when each was last affected."""
    samples: dict[int, ErrorSample] = field(default_factory=dict)
    """The first occurrence of each minute."""

    def add(
        self, time: float, org_id: str | None, user_id: str | None, sample: ErrorSample
    ) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, time)
        self.last_seen = max(self.last_seen, time)
        minute = int(time // MINUTE) * MINUTE
        key = (minute, org_id or "")
        self.minutes[key] = self.minutes.get(key, 0) + 1
        if user_id:
            self.users[user_id] = max(self.users.get(user_id, time), time)
        self.samples.setdefault(minute, sample)


def _source(kind: SpanKind) -> ErrorSource:
    match kind:
        case SpanKind.REQUEST | SpanKind.WEBSOCKET:
            return ErrorSource.REQUEST
        case SpanKind.INTEGRATION:
            return ErrorSource.INTEGRATION
        case SpanKind.TOOL:
            return ErrorSource.TOOL
        case _:
            return ErrorSource.SPAN


def _hex_trace(trace_id: int) -> str | None:
    return format_trace_id(trace_id) if trace_id else None


def _hex_span(span_id: int) -> str | None:
    return format_span_id(span_id) if span_id else None


# Cached: a storm repeats the same few errors and warnings, and each is fingerprinted both for
# its group and for its log row.
@lru_cache(maxsize=2048)
def _cached_error(
    error_type: str | None, message: str | None, frames: Frames | None, explicit: str | None
) -> Fingerprint:
    return error_fingerprint(error_type, message, frames, explicit)


@lru_cache(maxsize=2048)
def _cached_template(logger: str, message: str) -> Fingerprint:
    return template_fingerprint(logger, message)


def log_fingerprint(record: LogRecord) -> tuple[Fingerprint, ErrorSource] | None:
    """A log record's group: by its exception if it has one, else by template at WARNING and
    above; ``None`` for the rest (most records)."""
    if record.exception_type is None and record.exception is None:
        if record.level < LogLevel.WARNING:
            return None
        if record.fingerprint:
            return _cached_error(None, record.message, None, record.fingerprint), ErrorSource.LOG
        return _cached_template(record.logger, record.message), ErrorSource.PATTERN
    value = exception_value(record.exception_type, record.exception)
    fingerprint = _cached_error(
        record.exception_type,
        record.message if value is None else value,
        record.frames,
        record.fingerprint,
    )
    return fingerprint, ErrorSource.LOG


def span_fingerprint(span: Span) -> Fingerprint:
    """A failed span's group: the fingerprint its code named (``set_fingerprint``), else its
    error's."""
    attributes = span.attributes
    explicit = fingerprint_of(attributes.get(FINGERPRINT)) if attributes else None
    return _cached_error(span.error_type, span.error_message, span.frames, explicit)


def build_error_deltas(spans: Sequence[Span], logs: Sequence[LogRecord]) -> dict[str, ErrorDelta]:
    """One delta per fingerprint hash over the batch's failed spans and grouped log records."""
    deltas: dict[str, ErrorDelta] = {}
    propagated: set[tuple[int, str | None, str | None]] = set()

    def add(
        fingerprint: Fingerprint, source: ErrorSource, time: float, sample: ErrorSample
    ) -> None:
        delta = deltas.get(fingerprint.hash)
        if delta is None:
            delta = deltas[fingerprint.hash] = ErrorDelta(fingerprint, source, time, time)
        delta.add(time, sample.org_id, sample.user_id, sample)

    # Which spans failed, in C-level passes: nearly every span of a batch did not.
    for span in compress(spans, map(_FAILED, map(_status, spans))):
        if span.trace_id:
            key = (span.trace_id, span.error_type, span.error_message)
            if key in propagated:
                continue
            propagated.add(key)
        end = span.start + span.duration
        sample = ErrorSample(
            end,
            _hex_trace(span.trace_id),
            _hex_span(span.span_id),
            span.error_message or span.error_type or span.name,
            None,
            span.user_id,
            span.org_id,
            span.session_id,
        )
        add(span_fingerprint(span), _source(span.kind), end, sample)
    for record in logs:
        found = log_fingerprint(record)
        if found is None:
            continue
        fingerprint, source = found
        sample = ErrorSample(
            record.time,
            _hex_trace(record.trace_id),
            _hex_span(record.span_id),
            record.message,
            record.exception,
            record.user_id,
            record.org_id,
            record.session_id,
        )
        add(fingerprint, source, record.time, sample)
    return deltas
