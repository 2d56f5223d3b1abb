"""Watchkeeper's events as compact bytes: the spool's files and the collector's frames.

A batch's events become one orjson document of row lists (no field names), decoded back into the
same events. Trace ids are written in hex, since JSON numbers beyond 64 bits are not portable;
enums by value. Rollups and sessions are not written: whoever reads the events aggregates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import (
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
        )
    except (ValueError, TypeError, KeyError, IndexError) as error:
        # orjson.JSONDecodeError is a ValueError; a wrong shape fails in the constructors.
        raise UnreadableEvents(f"{type(error).__name__}: {error}") from error


def _hex(identifier: int) -> str:
    return format(identifier, "x")


def _number(value: float | None) -> float:
    # JSON has no NaN or infinity: orjson writes them as null.
    return float("nan") if value is None else value


def _span(span: Span) -> list[Any]:
    return [
        span.kind.value,
        span.name,
        span.start,
        span.duration,
        _hex(span.trace_id),
        span.span_id,
        span.parent_id,
        span.status.value,
        span.operation,
        span.error_type,
        span.error_message,
        span.user_id,
        span.org_id,
        span.session_id,
        span.model,
        span.input_tokens,
        span.output_tokens,
        span.cost,
        span.attributes,
    ]


def _span_from(row: list[Any]) -> Span:
    (kind, name, start, duration, trace_id, span_id, parent_id, status, *rest) = row
    return Span(
        SpanKind(kind),
        name,
        _number(start),
        _number(duration),
        int(trace_id, 16),
        span_id,
        parent_id,
        SpanStatus(status),
        *rest,
    )


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
    ]


def _log_from(row: list[Any]) -> LogRecord:
    (moment, level, logger, message, trace_id, *rest) = row
    return LogRecord(_number(moment), level, logger, message, int(trace_id, 16), *rest)


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
