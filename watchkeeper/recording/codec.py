"""Watchkeeper's events as compact bytes: the spool's files and the collector's frames.

A batch's events become one orjson document of row lists (no field names), decoded back into the
same events. Trace ids are written in hex, since JSON numbers beyond 64 bits are not portable;
enums by value. Rollups and sessions are not written: whoever reads the events aggregates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from operator import attrgetter
from typing import Any

import orjson

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import (
    Frames,
    LogRecord,
    MetricKind,
    MetricPoint,
    SessionMark,
    Severity,
    Snapshot,
    Span,
    SpanKind,
    SpanStatus,
    ValidationResult,
)
from watchkeeper.model.ids import new_batch_id

# The encoder a document needs, as its first byte: orjson reads integers beyond 64 bits as
# floats, so a batch holding one (in an attribute) is written, and read back, by the standard
# library instead.
_ORJSON = b"o"
_STDLIB = b"j"
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_encode_stdlib = json.JSONEncoder(default=str).encode


class UnreadableEvents(ValueError):
    """Bytes that do not decode into a batch of events."""


def encode_events(batch: Batch) -> bytes:
    """The batch's events (not its rollups or sessions) as one document."""
    document = {
        # The recording process's names, not the reader's: the events are its.
        "service": batch.service,
        "instance": batch.instance,
        "batch": batch.batch_id,
        "spans": [_span(span) for span in batch.spans],
        "logs": [_log(log) for log in batch.logs],
        "metrics": [_metric(point) for point in batch.metrics],
        "snapshots": [_snapshot(snapshot) for snapshot in batch.snapshots],
        "validations": [_validation(result) for result in batch.validations],
        "marks": [_mark(mark) for mark in batch.session_marks],
    }
    try:
        return _ORJSON + orjson.dumps(document, default=str, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return _STDLIB + _encode_stdlib(document).encode()


def decode_events(payload: bytes) -> Batch:
    """The events of :func:`encode_events`, as a batch without rollups or sessions."""
    try:
        body = payload[1:]
        document = orjson.loads(body) if payload[:1] == _ORJSON else json.loads(body)
        return Batch(
            service=str(document["service"]),
            instance=str(document["instance"]),
            spans=[_span_from(row) for row in document["spans"]],
            logs=[_log_from(row) for row in document["logs"]],
            metrics=[_metric_from(row) for row in document["metrics"]],
            snapshots=[_snapshot_from(row) for row in document["snapshots"]],
            validations=[_validation_from(row) for row in document["validations"]],
            session_marks=[SessionMark(*row) for row in document["marks"]],
            batch_id=_batch_id(document.get("batch")),
        )
    except (ValueError, TypeError, KeyError, IndexError) as error:
        # orjson.JSONDecodeError is a ValueError; a wrong shape fails in the constructors.
        raise UnreadableEvents(f"{type(error).__name__}: {error}") from error


def _batch_id(value: object) -> int:
    if value is None:  # a spool file written before batches had ids
        return new_batch_id()
    if type(value) is not int or not 0 < value < 2**63:
        raise TypeError(f"a batch id is a positive 63-bit integer, got {value!r}")
    return value


def _hex(identifier: int) -> str:
    try:
        # Two C calls: several times cheaper than format(identifier, "x") for a 128-bit int.
        return identifier.to_bytes(16).hex()
    except OverflowError:  # not a 128-bit id (a hand-made one): as it is
        return format(identifier, "x")


def _number(value: float | None) -> float:
    # JSON has no NaN or infinity: orjson writes them as null.
    return float("nan") if value is None else value


# A span's fields read by two C-level getters: one span per request passes here, and reading the
# nineteen fields one by one in Python cost more than the rest of its encoding. Enum members are
# left as they are: both encoders write a string enum as its value.
_span_head = attrgetter("kind", "name", "start", "duration")
_span_tail = attrgetter(
    "span_id",
    "parent_id",
    "status",
    "operation",
    "error_type",
    "error_message",
    "user_id",
    "org_id",
    "session_id",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "attributes",
    "frames",
)


def _span(span: Span) -> list[Any]:
    return [*_span_head(span), _hex(span.trace_id), *_span_tail(span)]


# A collector decodes every span its apps send: a dict lookup costs a fraction of calling the
# enum class with a value. An unknown value is a KeyError, reported as unreadable.
_SPAN_KINDS = {kind.value: kind for kind in SpanKind}
_SPAN_STATUSES = {status.value: status for status in SpanStatus}


def _span_from(row: list[Any]) -> Span:
    (kind, name, start, duration, trace_id, span_id, parent_id, status, *rest) = row
    # A row of an older sender (a spool written before frames) ends at the attributes.
    span = Span(
        _SPAN_KINDS[kind],
        name,
        _number(start),
        _number(duration),
        int(trace_id, 16),
        span_id,
        parent_id,
        _SPAN_STATUSES[status],
        *rest[:_SPAN_FRAMES],
    )
    if len(rest) > _SPAN_FRAMES and rest[_SPAN_FRAMES] is not None:
        span.frames = _frames_from(rest[_SPAN_FRAMES])
    return span


_SPAN_FRAMES = 11
"""Where a span's frames sit among its fields after the status."""


def _frames_from(frames: list[Any] | None) -> Frames | None:
    return None if frames is None else tuple((str(module), str(name)) for module, name in frames)


def _log(log: LogRecord) -> list[Any]:
    return [
        log.time,
        log.level,
        log.logger,
        log.message,
        _hex(log.trace_id),
        log.span_id,
        log.user_id,
        log.org_id,
        log.attributes,
        log.session_id,
        log.exception_type,
        log.exception,
        log.frames,
        log.fingerprint,
        log.source,
    ]


def _log_from(row: list[Any]) -> LogRecord:
    (moment, level, logger, message, trace_id, span_id, user_id, org_id, attributes, *more) = row
    # A row of an older sender (a spool written before these fields) ends at the attributes.
    session_id, exception_type, exception, frames, fingerprint, source = more or [None] * 6
    return LogRecord(
        _number(moment),
        level,
        logger,
        message,
        int(trace_id, 16),
        span_id,
        user_id,
        org_id,
        attributes,
        session_id,
        exception_type,
        exception,
        _frames_from(frames),
        fingerprint,
        source,
    )


def _metric(point: MetricPoint) -> list[Any]:
    return [point.time, point.name, point.kind.value, point.value, point.org_id, point.attributes]


def _metric_from(row: list[Any]) -> MetricPoint:
    (moment, name, kind, value, org_id, attributes) = row
    return MetricPoint(_number(moment), name, MetricKind(kind), _number(value), org_id, attributes)


def _snapshot(snapshot: Snapshot) -> list[Any]:
    return [
        snapshot.time,
        snapshot.name,
        snapshot.data,
        _hex(snapshot.trace_id),
        snapshot.span_id,
        snapshot.session_id,
        snapshot.user_id,
        snapshot.org_id,
    ]


def _snapshot_from(row: list[Any]) -> Snapshot:
    (moment, name, data, trace_id, *rest) = row
    if not isinstance(data, Mapping):
        raise TypeError("a snapshot's data must be an object")
    return Snapshot(_number(moment), name, dict(data), int(trace_id, 16), *rest)


def _validation(result: ValidationResult) -> list[Any]:
    return [
        result.time,
        result.validator,
        result.target,
        result.passed,
        result.observed,
        result.expected,
        result.severity.value,
        result.message,
        _hex(result.trace_id),
        result.span_id,
        result.session_id,
        result.user_id,
        result.org_id,
    ]


def _validation_from(row: list[Any]) -> ValidationResult:
    (moment, validator, target, passed, observed, expected, severity, message, trace_id, *rest) = (
        row
    )
    return ValidationResult(
        _number(moment),
        validator,
        target,
        passed,
        observed,
        expected,
        Severity(severity),
        message,
        int(trace_id, 16),
        *rest,
    )


def _mark(mark: SessionMark) -> list[Any]:
    return [mark.time, mark.session_id, mark.ended, mark.user_id, mark.org_id]
