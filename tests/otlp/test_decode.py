"""OTLP bodies: JSON's own spellings, gzip's limits, and the errors a sender is told."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from watchkeeper.otlp.decode import (
    BadRequest,
    Encoding,
    check_content_encoding,
    decode_request,
    encoding_of,
    gunzip,
)

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


def _json(document: object) -> bytes:
    return orjson.dumps(document)


def test_json_ids_are_hex_and_other_bytes_stay_base64() -> None:
    body = _json(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": TRACE_HEX,
                                    "spanId": SPAN_HEX,
                                    "parentSpanId": "",
                                    "name": "x",
                                    "kind": "SPAN_KIND_SERVER",
                                    "startTimeUnixNano": 1,
                                    "attributes": [
                                        {"key": "n", "value": {"intValue": "9007199254740993"}},
                                        {
                                            "key": "b",
                                            "value": {
                                                "bytesValue": base64.b64encode(b"hi").decode()
                                            },
                                        },
                                    ],
                                    "links": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX}],
                                    "status": {"code": 2},
                                    "someFutureField": True,
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )
    request = decode_request(body, Encoding.JSON, ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE_HEX
    assert span.span_id.hex() == SPAN_HEX
    assert span.parent_span_id == b""
    assert span.links[0].trace_id.hex() == TRACE_HEX
    assert span.kind == 2
    assert span.status.code == 2
    assert span.attributes[0].value.int_value == 9007199254740993
    assert span.attributes[1].value.bytes_value == b"hi"


def test_snake_case_field_names_are_read_too() -> None:
    body = _json(
        {"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_HEX, "name": "x"}]}]}]}
    )
    request = decode_request(body, Encoding.JSON, ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE_HEX


def test_log_record_ids_are_hex() -> None:
    body = _json(
        {
            "resourceLogs": [
                {
                    "scopeLogs": [
                        {"logRecords": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX, "body": {}}]}
                    ]
                }
            ]
        }
    )
    request = decode_request(body, Encoding.JSON, ExportLogsServiceRequest)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    assert (record.trace_id.hex(), record.span_id.hex()) == (TRACE_HEX, SPAN_HEX)


def test_exemplar_ids_are_hex_in_every_kind_of_metric() -> None:
    exemplar = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "asDouble": 1.5}
    metrics = [
        {"name": "g", "gauge": {"dataPoints": [{"asInt": "1", "exemplars": [exemplar]}]}},
        {"name": "s", "sum": {"dataPoints": [{"asInt": "1", "exemplars": [exemplar]}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "1", "exemplars": [exemplar]}]}},
        # snake_case, which protobuf's JSON mapping reads too
        {
            "name": "e",
            "exponential_histogram": {"data_points": [{"count": 1, "exemplars": [exemplar]}]},
        },
    ]
    body = _json({"resourceMetrics": [{"scopeMetrics": [{"metrics": metrics}]}]})
    request = decode_request(body, Encoding.JSON, ExportMetricsServiceRequest)
    decoded = request.resource_metrics[0].scope_metrics[0].metrics
    for metric in decoded:
        series = getattr(metric, str(metric.WhichOneof("data")))
        [found] = series.data_points[0].exemplars
        assert (found.trace_id.hex(), found.span_id.hex()) == (TRACE_HEX, SPAN_HEX)


def test_a_bad_id_is_named_by_where_it_is() -> None:
    body = _json({"resourceLogs": [{"scopeLogs": [{"logRecords": [{}, {"spanId": "xyz"}]}]}]})
    with pytest.raises(BadRequest) as raised:
        decode_request(body, Encoding.JSON, ExportLogsServiceRequest)
    assert raised.value.message.startswith(
        "resourceLogs[0].scopeLogs[0].logRecords[1].spanId must be a hex string"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "must be a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 7}]}]}]}', "hex string"),
        (b'{"resourceSpans": "many"}', "not a valid OTLP JSON message"),
    ],
)
def test_broken_json_is_a_400_that_says_why(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as raised:
        decode_request(body, Encoding.JSON, ExportTraceServiceRequest)
    assert raised.value.status == 400


def test_content_types_and_encodings() -> None:
    assert encoding_of("application/json; charset=utf-8") is Encoding.JSON
    assert encoding_of("Application/X-Protobuf") is Encoding.PROTOBUF
    for refused in (None, "text/plain", "application/grpc"):
        with pytest.raises(BadRequest) as raised:
            encoding_of(refused)
        assert raised.value.status == 415
    assert check_content_encoding("gzip") is True
    assert check_content_encoding(None) is False
    with pytest.raises(BadRequest):
        check_content_encoding("deflate")


def test_gzip_is_bounded_after_decompression() -> None:
    assert gunzip(gzip.compress(b"a" * 100), 100) == b"a" * 100
    # Concatenated members are one body.
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 100) == b"abcd"
    with pytest.raises(BadRequest, match="once decompressed") as raised:
        gunzip(gzip.compress(b"\0" * 10_000_000), 1_000)
    assert raised.value.status == 413
    with pytest.raises(BadRequest, match="once decompressed"):
        gunzip(gzip.compress(b"a" * 60) + gzip.compress(b"b" * 60), 100)
    with pytest.raises(BadRequest, match="not valid gzip"):
        gunzip(b"plain text", 100)
