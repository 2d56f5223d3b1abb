"""What Watchkeeper records: spans, log records and metric points.

These are plain slotted classes rather than dataclasses or pydantic models because they are built
on the request path: creating one must cost well under a microsecond. Identifiers are kept as
integers and only formatted as hex when the background worker writes them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from operator import attrgetter
from typing import Any

Attributes = dict[str, Any]


class SpanKind(StrEnum):
    """What a span times. Stored as its value; new kinds need no migration."""

    REQUEST = "request"
    WEBSOCKET = "websocket"
    INTEGRATION = "integration"
    TOOL = "tool"
    AGENT = "agent"
    QUEUE = "queue"
    INTERNAL = "internal"


class SpanStatus(StrEnum):
    """How a span ended; stored as its value, so new statuses need no migration."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    """Stopped by its caller (a client gone, a stream closed early): not counted as an error."""


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


class LogLevel(IntEnum):
    """The standard library's numeric levels, so ``logging`` records map one to one."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    AUDIT = 35
    """Who did what (an export, a role change): above WARNING, so the standard library's default
    configuration lets it through, and never dropped before the other levels."""
    ERROR = 40
    SECURITY = 45
    """A security event (a refused key, a forged token): never dropped before the other levels."""
    CRITICAL = 50


_LEVEL_ALIASES = {
    "TRACE": LogLevel.DEBUG,
    "INFORMATION": LogLevel.INFO,
    "NOTICE": LogLevel.INFO,
    "WARN": LogLevel.WARNING,
    "ERR": LogLevel.ERROR,
    "EXCEPTION": LogLevel.ERROR,
    "FATAL": LogLevel.CRITICAL,
    "CRIT": LogLevel.CRITICAL,
    "ALERT": LogLevel.CRITICAL,
    "EMERGENCY": LogLevel.CRITICAL,
    "PANIC": LogLevel.CRITICAL,
}
_LEVEL_NAMES = {level.name: level for level in LogLevel} | _LEVEL_ALIASES


def level_named(name: str) -> LogLevel | None:
    """The level a name means, in any case, with the usual other spellings (``warn``, ``fatal``,
    syslog's ``notice``/``emergency``, OpenTelemetry's ``trace``); ``None`` for no level."""
    return _LEVEL_NAMES.get(name.strip().upper())


PROTECTED_LEVELS = frozenset({LogLevel.AUDIT, LogLevel.SECURITY})
"""Levels whose records take the spans' share of the recorder's buffer, not the logs' own: a log
storm cannot push them out."""


class Span:
    """One timed operation: a request, an integration call, a tool call, an agent step.

    ``start`` is wall-clock seconds since the epoch (UTC); ``duration`` is in seconds.
    ``cost`` is in US dollars; ``None`` with tokens present means the price is unknown.

    Not slotted, on purpose: the optional fields default at class level, so a span opened on the
    request path stores only what it has (a slotted object must store every field, and its
    ``__init__`` was the larger part of the hot path's cost).
    """

    kind: SpanKind
    name: str
    start: float
    trace_id: int
    span_id: int
    duration: float = 0.0
    parent_id: int = 0
    status: SpanStatus = SpanStatus.OK
    operation: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    user_id: str | None = None
    org_id: str | None = None
    session_id: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    attributes: Attributes | None = None
    frames: Frames | None = None
    """The stack of the exception that ended the span, when one did (set off the normal path)."""

    def __init__(
        self,
        kind: SpanKind,
        name: str,
        start: float,
        duration: float,
        trace_id: int,
        span_id: int,
        parent_id: int = 0,
        status: SpanStatus = SpanStatus.OK,
        operation: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
        session_id: str | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        attributes: Attributes | None = None,
        frames: Frames | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.start = start
        self.duration = duration
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.status = status
        self.operation = operation
        self.error_type = error_type
        self.error_message = error_message
        self.user_id = user_id
        self.org_id = org_id
        self.session_id = session_id
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost = cost
        self.attributes = attributes
        if frames is not None:
            self.frames = frames

    @property
    def is_error(self) -> bool:
        return self.status is SpanStatus.ERROR

    @property
    def cost_unknown(self) -> bool:
        """Tokens were used but no price is known: never reported as a silent $0."""
        return self.cost is None and bool(self.input_tokens or self.output_tokens)

    def __repr__(self) -> str:
        return (
            f"Span(kind={self.kind.value!r}, name={self.name!r}, status={self.status.value!r}, "
            f"duration={self.duration:.6f}, trace_id={self.trace_id:032x})"
        )


def has_usage(span: Span) -> bool:
    """Whether a span carries token counts or a cost: the AI calls, a few of all spans."""
    return span.input_tokens is not None or span.output_tokens is not None or span.cost is not None


_status = attrgetter("status")


def error_count(spans: list[Span]) -> int:
    # C-level passes: the flush worker counts errors for every key of every batch.
    return list(map(_status, spans)).count(SpanStatus.ERROR)


Frames = tuple[tuple[str, str], ...]
"""An exception's stack as (module, function) pairs, innermost last: what errors group by."""


class LogRecord:
    """A log line, tied to the trace and span that were current when it was written.

    ``exception`` is the formatted traceback of a record written with one, ``exception_type`` its
    class name and ``frames`` its stack; ``fingerprint`` is one the app gave explicitly
    (``extra={"fingerprint": ...}``). ``source`` is the file a record was read from by ``tail``,
    ``None`` for a record of the app's own process.
    """

    __slots__ = (
        "attributes",
        "exception",
        "exception_type",
        "fingerprint",
        "frames",
        "level",
        "logger",
        "message",
        "org_id",
        "session_id",
        "source",
        "span_id",
        "time",
        "trace_id",
        "user_id",
    )

    def __init__(
        self,
        time: float,
        level: int,
        logger: str,
        message: str,
        trace_id: int = 0,
        span_id: int = 0,
        user_id: str | None = None,
        org_id: str | None = None,
        attributes: Attributes | None = None,
        session_id: str | None = None,
        exception_type: str | None = None,
        exception: str | None = None,
        frames: Frames | None = None,
        fingerprint: str | None = None,
        source: str | None = None,
    ) -> None:
        self.time = time
        self.level = level
        self.logger = logger
        self.message = message
        self.trace_id = trace_id
        self.span_id = span_id
        self.user_id = user_id
        self.org_id = org_id
        self.attributes = attributes
        self.session_id = session_id
        self.exception_type = exception_type
        self.exception = exception
        self.frames = frames
        self.fingerprint = fingerprint
        self.source = source


class MetricPoint:
    """One sample of a counter increment or a gauge value (queue depth, credits used, CPU)."""

    __slots__ = ("attributes", "kind", "name", "org_id", "time", "value")

    def __init__(
        self,
        time: float,
        name: str,
        kind: MetricKind,
        value: float,
        org_id: str | None = None,
        attributes: Attributes | None = None,
    ) -> None:
        self.time = time
        self.name = name
        self.kind = kind
        self.value = value
        self.org_id = org_id
        self.attributes = attributes


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class Snapshot:
    """What the app knew at a step (the question, birth details, retrieved documents).

    ``data`` is redacted on the flush worker before it is stored, never on the request path.
    """

    __slots__ = ("data", "name", "org_id", "session_id", "span_id", "time", "trace_id", "user_id")

    def __init__(
        self,
        time: float,
        name: str,
        data: Attributes,
        trace_id: int = 0,
        span_id: int = 0,
        session_id: str | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
    ) -> None:
        self.time = time
        self.name = name
        self.data = data
        self.trace_id = trace_id
        self.span_id = span_id
        self.session_id = session_id
        self.user_id = user_id
        self.org_id = org_id


class ValidationResult:
    """One run of a business rule on an AI answer; a failure is an issue with a severity."""

    __slots__ = (
        "expected",
        "message",
        "observed",
        "org_id",
        "passed",
        "session_id",
        "severity",
        "span_id",
        "target",
        "time",
        "trace_id",
        "user_id",
        "validator",
    )

    def __init__(
        self,
        time: float,
        validator: str,
        target: str,
        passed: bool,
        observed: float | str | None,
        expected: str,
        severity: Severity,
        message: str = "",
        trace_id: int = 0,
        span_id: int = 0,
        session_id: str | None = None,
        user_id: str | None = None,
        org_id: str | None = None,
    ) -> None:
        self.time = time
        self.validator = validator
        self.target = target
        self.passed = passed
        self.observed = observed
        self.expected = expected
        self.severity = severity
        self.message = message
        self.trace_id = trace_id
        self.span_id = span_id
        self.session_id = session_id
        self.user_id = user_id
        self.org_id = org_id


class SessionMark:
    """An explicit start or end of a session; sessions also appear from their spans alone."""

    __slots__ = ("ended", "org_id", "session_id", "time", "user_id")

    def __init__(
        self,
        time: float,
        session_id: str,
        ended: bool,
        user_id: str | None = None,
        org_id: str | None = None,
    ) -> None:
        self.time = time
        self.session_id = session_id
        self.ended = ended
        self.user_id = user_id
        self.org_id = org_id


Event = Span | LogRecord | MetricPoint | Snapshot | ValidationResult | SessionMark
