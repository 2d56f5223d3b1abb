"""OTLP bodies: JSON's own spellings, gzip's limits, and the errors a sender is told."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest

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
    request = decode_request(body, Encoding.JSON)
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
    span = decode_request(body, Encoding.JSON).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE_HEX


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
        decode_request(body, Encoding.JSON)
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
