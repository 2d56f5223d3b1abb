"""OTLP/HTTP bodies in and out: protobuf or JSON, plain or gzip, bounded in size.

Every way a body can be wrong ends in :class:`BadRequest`, which carries the HTTP status OTLP
asks for (400, 413, 415) and a message for the sender; the caller answers it in the request's
own encoding (:func:`encode_status`). Nothing here touches the recorder, so a bad body never
loses or half-stores anything.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GZIP_WBITS = zlib.MAX_WBITS | 16
"""zlib's window bits for a gzip header and trailer."""
INVALID_ARGUMENT = 3
"""google.rpc.Code for a request that cannot be read; OTLP puts it in the Status body."""
UNAUTHENTICATED = 16
PERMISSION_DENIED = 7
UNAVAILABLE = 14

M = TypeVar("M", bound=Message)


class Encoding(StrEnum):
    """How a request (and so its answer) is encoded."""

    PROTOBUF = PROTOBUF
    JSON = JSON


class BadRequest(Exception):
    """A body Watchkeeper will not take: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def encoding_of(content_type: str | None) -> Encoding:
    """The request's encoding from its ``Content-Type``; parameters (charset) are ignored."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media == PROTOBUF:
        return Encoding.PROTOBUF
    if media == JSON:
        return Encoding.JSON
    raise BadRequest(
        415,
        f"Content-Type must be {PROTOBUF} or {JSON}, got {media or 'none'!r}",
    )


def check_content_encoding(content_encoding: str | None) -> bool:
    """Whether the body is gzip-compressed; any coding but gzip and identity is refused."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "gzip":
        return True
    if coding == "identity":
        return False
    raise BadRequest(415, f"Content-Encoding must be gzip or identity, got {coding!r}")


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing it as soon as its output would pass ``limit``.

    Output is produced at most ``limit + 1`` bytes at a time, so a small body that inflates to
    gigabytes (a gzip bomb) costs no more memory than an honest body of the limit's size.
    Concatenated gzip members (allowed by the format) are read one after the other.
    """
    output = bytearray()
    remaining = body
    while remaining:
        inflater = zlib.decompressobj(GZIP_WBITS)
        try:
            output += inflater.decompress(remaining, limit + 1 - len(output))
        except zlib.error as error:
            raise BadRequest(400, f"the body is not valid gzip: {error}") from None
        if len(output) > limit or inflater.unconsumed_tail:
            raise BadRequest(413, f"the body is larger than {limit} bytes once decompressed")
        if not inflater.eof:
            raise BadRequest(400, "the body is not valid gzip: it ends before its last block")
        remaining = inflater.unused_data
    return bytes(output)


def decode_request(body: bytes, encoding: Encoding, message: type[M]) -> M:
    """An OTLP export request (``message``) from its protobuf or OTLP JSON encoding."""
    request = message()
    if encoding is Encoding.PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise BadRequest(
                400, f"the body is not a valid OTLP protobuf message: {error}"
            ) from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRequest(400, f"the body must be a JSON object (an {request.DESCRIPTOR.name})")
    for path in _ID_PATHS.get(message, ()):
        for holder, where in _holders(document, path, ""):
            for field in _ID_FIELDS:
                if field in holder:
                    holder[field] = _hex_to_base64(holder[field], f"{where}.{field}")
    try:
        # Unknown fields are ignored, as OTLP asks of receivers; enums may be names or numbers
        # and 64-bit integers strings or numbers, both of which the JSON mapping reads. Nesting
        # deep enough to exhaust the parser's recursion is a bad body like any other.
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as error:
        raise BadRequest(400, f"the body is not a valid OTLP JSON message: {error}") from None
    return request


_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_ID_PATHS: Mapping[type[Message], tuple[tuple[str, ...], ...]] = {
    ExportTraceServiceRequest: (
        ("resourceSpans", "scopeSpans", "spans"),
        ("resourceSpans", "scopeSpans", "spans", "links"),
    ),
    ExportLogsServiceRequest: (("resourceLogs", "scopeLogs", "logRecords"),),
    ExportMetricsServiceRequest: tuple(
        ("resourceMetrics", "scopeMetrics", "metrics", data, "dataPoints", "exemplars")
        for data in ("gauge", "sum", "histogram", "exponentialHistogram")
    ),
}
"""Where each request's JSON holds trace and span ids: spans and their links, log records,
and the exemplars of metric data points.

OTLP JSON writes these ids in hex, where protobuf's JSON mapping expects base64 for bytes;
every other bytes field (an attribute's ``bytesValue``) stays base64.
"""


def _holders(
    holder: dict[str, Any], path: tuple[str, ...], where: str
) -> Iterator[tuple[dict[str, Any], str]]:
    """The objects at the end of ``path`` (field names in camelCase or snake_case), with where
    each is in the document."""
    if not path:
        yield holder, where
        return
    name, rest = path[0], path[1:]
    here = f"{where}.{name}" if where else name
    for spelling in dict.fromkeys((name, _snake(name))):
        value = holder.get(spelling)
        if isinstance(value, dict):
            yield from _holders(value, rest, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _holders(item, rest, f"{here}[{index}]")


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _hex_to_base64(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(400, f"{where} must be a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadRequest(400, f"{where} must be a hex string, got {value[:40]!r}") from None
    return base64.b64encode(raw).decode("ascii")


def encode(message: Message, encoding: Encoding) -> bytes:
    """``message`` in the encoding the request came in, as OTLP asks of the answer."""
    if encoding is Encoding.PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def encode_status(code: int, message: str, encoding: Encoding) -> bytes:
    """The ``google.rpc.Status`` body OTLP/HTTP puts in its error answers."""
    return encode(Status(code=code, message=message), encoding)
