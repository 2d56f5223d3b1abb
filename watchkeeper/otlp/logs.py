"""OpenTelemetry log records as Watchkeeper's, searchable beside the app's own logs.

Time is the record's, else when it was observed, else when Watchkeeper received it: a line
without a time is still worth keeping. The level comes from the severity number (OTel's 1-24,
four steps per level) as the standard library's numbers, so a Python ``logging`` record sent by
the OpenTelemetry SDK comes back at its own level (DEBUG2 is 11, INFO is 20, FATAL is 50); TRACE
is DEBUG, Watchkeeper's lowest level, so the log search still finds it. Without a number the
severity text is read (``WARN``, ``Error``…), and a record with neither is INFO. The logger is the
instrumentation scope (a Python logger's name), else the service's name. A structured body is
kept as JSON. User and organisation come from the record's attributes, then its resource's.
"""

from __future__ import annotations

import time

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as OtelLogRecord

from watchkeeper.model.events import Attributes, LogLevel, LogRecord, level_named
from watchkeeper.otlp.common import (
    ORG_KEYS,
    SERVICE_NAME,
    USER_KEYS,
    Lookup,
    Mapped,
    attributes_of,
    bounded,
    clip,
    identifier,
    plain,
    resource_kept,
)

MAX_MESSAGE_CHARS = 32_768
BODY_DEPTH = 4
"""How deep a structured body is kept as JSON; deeper parts are kept as short text."""
SEVERITY_TEXT = "otel.severity_text"
EVENT_NAME = "event.name"

LEVEL_BLOCKS = (
    LogLevel.DEBUG,
    LogLevel.DEBUG,
    LogLevel.INFO,
    LogLevel.WARNING,
    LogLevel.ERROR,
    LogLevel.CRITICAL,
)
"""The level of each block of four severity numbers: TRACE, DEBUG, INFO, WARN, ERROR, FATAL."""


def map_logs(request: ExportLogsServiceRequest) -> Mapped[LogRecord]:
    mapped: Mapped[LogRecord] = Mapped()
    received = time.time()
    for resource_logs in request.resource_logs:
        resource = attributes_of(resource_logs.resource.attributes)
        kept = resource_kept(resource)
        for scope_logs in resource_logs.scope_logs:
            logger = clip(scope_logs.scope.name or str(kept[SERVICE_NAME]))
            for record in scope_logs.log_records:
                mapped.events.append(map_record(record, resource, kept, logger, received))
    return mapped


def map_record(
    record: OtelLogRecord, resource: Attributes, kept: Attributes, logger: str, received: float
) -> LogRecord:
    attributes = attributes_of(record.attributes)
    found = Lookup(attributes, resource)
    moment = record.time_unix_nano or record.observed_time_unix_nano
    own = dict(kept)
    if record.severity_text:
        own[SEVERITY_TEXT] = clip(record.severity_text)
    if record.event_name:
        own[EVENT_NAME] = clip(record.event_name)
    return LogRecord(
        time=moment / 1e9 if moment else received,
        level=level_of(record.severity_number, record.severity_text),
        logger=logger,
        message=message_of(record.body),
        trace_id=identifier(record.trace_id, 16),
        span_id=identifier(record.span_id, 8),
        user_id=found.identity(USER_KEYS),
        org_id=found.identity(ORG_KEYS),
        attributes=bounded(own, attributes),
    )


def level_of(severity_number: int, severity_text: str) -> int:
    """The standard library's level for an OTel severity: DEBUG3 is 12, WARN is 30."""
    if 1 <= severity_number <= 24:
        block, step = divmod(severity_number - 1, 4)
        # TRACE has no level of its own below DEBUG that the log search could ask for.
        return int(LEVEL_BLOCKS[block]) + (step if block else 0)
    level = level_named(severity_text.strip().rstrip("0123456789"))
    return int(level if level is not None else LogLevel.INFO)


def message_of(body: AnyValue) -> str:
    which = body.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return body.string_value[:MAX_MESSAGE_CHARS]
    value = plain(body, max_depth=BODY_DEPTH)
    if isinstance(value, str):
        return value[:MAX_MESSAGE_CHARS]
    # NaN and infinities become null: JSON has no spelling for them.
    return orjson.dumps(value).decode()[:MAX_MESSAGE_CHARS]
