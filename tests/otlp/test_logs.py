"""How OpenTelemetry log records become Watchkeeper's: levels, times, bodies, ids, identity."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from watchkeeper.model.events import LogLevel
from watchkeeper.model.events import LogRecord as WatchkeeperLog
from watchkeeper.otlp.common import MAX_ATTRIBUTES
from watchkeeper.otlp.logs import MAX_MESSAGE_CHARS, level_of, map_logs

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
TIME = 1_700_000_000_500_000_000


def _text(value: str) -> AnyValue:
    return AnyValue(string_value=value)


def _pairs(attributes: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_text(value)) for key, value in attributes.items()]


def _map(
    *records: LogRecord, scope: str = "", resource: dict[str, str] | None = None
) -> list[WatchkeeperLog]:
    return map_logs(
        ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=Resource(attributes=_pairs(resource or {})),
                    scope_logs=[
                        ScopeLogs(scope=InstrumentationScope(name=scope), log_records=records)
                    ],
                )
            ]
        )
    ).events


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", LogLevel.DEBUG),  # TRACE: DEBUG is the lowest level the log search asks for
        (4, "", LogLevel.DEBUG),
        (5, "", LogLevel.DEBUG),
        (6, "", 11),  # DEBUG2, as the SDK writes a Python level 11
        (9, "WARN", LogLevel.INFO),  # the number wins over the text
        (12, "", 23),
        (13, "", LogLevel.WARNING),
        (17, "", LogLevel.ERROR),
        (21, "", LogLevel.CRITICAL),
        (24, "", 53),
        (0, "Warning", LogLevel.WARNING),
        (0, "ERROR2", LogLevel.ERROR),
        (0, " fatal ", LogLevel.CRITICAL),
        (0, "verbose", LogLevel.INFO),
        (0, "", LogLevel.INFO),
        (25, "error", LogLevel.ERROR),  # out of range: the text decides
    ],
)
def test_levels_from_severity_number_then_text(number: int, text: str, level: int) -> None:
    assert level_of(number, text) == level


def test_a_record_keeps_time_ids_scope_body_and_identity() -> None:
    [mapped] = _map(
        LogRecord(
            time_unix_nano=TIME,
            observed_time_unix_nano=TIME + 7,
            severity_number=13,  # type: ignore[arg-type]
            severity_text="WARNING",
            body=_text("card declined"),
            attributes=_pairs({"enduser.id": "user-1", "payment.provider": "stripe"}),
            trace_id=TRACE,
            span_id=SPAN,
            event_name="payment.failed",
        ),
        scope="billing.jobs",
        resource={"service.name": "billing", "tenant.id": "acme", "host.name": "h1"},
    )
    assert mapped.time == TIME / 1e9
    assert (mapped.level, mapped.logger, mapped.message) == (30, "billing.jobs", "card declined")
    assert mapped.trace_id == int.from_bytes(TRACE, "big")
    assert mapped.span_id == int.from_bytes(SPAN, "big")
    assert (mapped.user_id, mapped.org_id) == ("user-1", "acme")
    assert mapped.attributes == {
        "service.name": "billing",
        "otel.severity_text": "WARNING",
        "event.name": "payment.failed",
        "enduser.id": "user-1",
        "payment.provider": "stripe",
    }


def test_without_time_the_observed_time_then_the_arrival() -> None:
    observed, bare = _map(
        LogRecord(observed_time_unix_nano=TIME, body=_text("a")), LogRecord(body=_text("b"))
    )
    assert observed.time == TIME / 1e9
    assert bare.time == pytest.approx(time.time(), abs=60)


def test_without_a_scope_the_logger_is_the_service() -> None:
    [named, unnamed] = [
        _map(LogRecord(time_unix_nano=TIME), resource=resource)[0]
        for resource in ({"service.name": "worker"}, {})
    ]
    assert (named.logger, unnamed.logger) == ("worker", "unknown_service")
    assert named.message == ""


def test_malformed_ids_are_left_out_and_the_record_kept() -> None:
    [mapped] = _map(LogRecord(time_unix_nano=TIME, trace_id=b"\1\2", span_id=b"\3" * 9))
    assert (mapped.trace_id, mapped.span_id) == (0, 0)


def test_a_structured_body_is_json() -> None:
    body = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="event", value=_text("refund")),
                KeyValue(key="amount", value=AnyValue(double_value=12.5)),
                KeyValue(
                    key="items",
                    value=AnyValue(
                        array_value=ArrayValue(
                            values=[AnyValue(int_value=1), AnyValue(bool_value=True)]
                        )
                    ),
                ),
                KeyValue(key="nan", value=AnyValue(double_value=float("nan"))),
            ]
        )
    )
    [mapped] = _map(LogRecord(time_unix_nano=TIME, body=body))
    assert orjson.loads(mapped.message) == {
        "event": "refund",
        "amount": 12.5,
        "items": [1, True],
        "nan": None,
    }


def test_messages_and_attributes_are_bounded() -> None:
    many: dict[str, Any] = {f"key{number}": "v" for number in range(200)}
    [mapped] = _map(
        LogRecord(time_unix_nano=TIME, body=_text("x" * 100_000), attributes=_pairs(many))
    )
    assert len(mapped.message) == MAX_MESSAGE_CHARS
    assert mapped.attributes is not None
    assert len(mapped.attributes) == MAX_ATTRIBUTES
