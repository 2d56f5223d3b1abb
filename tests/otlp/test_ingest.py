"""OTLP/HTTP ingest end to end: the OpenTelemetry SDK and its official exporter, hand-written OTLP
JSON and broken bodies, sent to a real uvicorn server running an instrumented app, read back
from the real SQLite store."""

from __future__ import annotations

import gzip
import json
import secrets
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as OtelStatus

from tests.otlp.served import API_KEY, INGEST_KEY, LIMIT, START_NS, Served, otlp_json


def _sdk_spans() -> tuple[int, list[Any]]:
    """A checkout request of a non-Python-looking service calling an LLM, made by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout", "service.version": "2.1.0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("checkout.handlers")
    with tracer.start_as_current_span(
        "GET /checkout/{cart}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/checkout/{cart}",
            "http.response.status_code": 200,
            "enduser.id": "user-42",
            "session.id": "session-7",
            "org.id": "acme",
        },
    ) as request:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.system": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 500,
                "server.address": "api.openai.com",
            },
        ):
            pass
        with tracer.start_as_current_span("render receipt") as failing:
            failing.record_exception(ValueError("no template"))
            failing.set_status(OtelStatus(StatusCode.ERROR, "rendering failed"))
    provider.shutdown()
    return request.get_span_context().trace_id, list(memory.get_finished_spans())


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_official_exporter_sends_spans_that_are_stored_and_priced(
    served: Served, compression: Compression
) -> None:
    trace_id, spans = _sdk_spans()
    exporter = OTLPSpanExporter(
        endpoint=served.traces_url,
        headers={"Authorization": f"Bearer {INGEST_KEY}"},
        compression=compression,
        timeout=10,
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()  # type: ignore[no-untyped-call]

    stored = {span.name: span for span in served.trace(trace_id)}
    assert set(stored) == {"GET /checkout/{cart}", "openai", "render receipt"}
    request, call, failed = (
        stored["GET /checkout/{cart}"],
        stored["openai"],
        stored["render receipt"],
    )
    assert request.kind == "request"
    assert request.parent_id is None
    assert (request.user_id, request.session_id, request.org_id) == ("user-42", "session-7", "acme")
    assert request.attributes["route"] == "/checkout/{cart}"
    assert request.attributes["status_code"] == 200
    assert request.attributes["service.name"] == "checkout"
    assert call.kind == "integration"
    assert call.operation == "chat gpt-4o-mini"
    assert call.parent_id == request.span_id
    assert call.model == "gpt-4o-mini"
    assert (call.input_tokens, call.output_tokens) == (1_000, 500)
    # Priced by genai-prices on the worker: $0.15 and $0.60 per million tokens.
    assert call.cost == pytest.approx(1_000 * 0.15e-6 + 500 * 0.6e-6)
    assert call.user_id == "user-42"  # inherited from its request, as the app's own spans do
    assert failed.kind == "internal"
    assert failed.status == "error"
    assert failed.error_message == "rendering failed"
    assert failed.error_type == "ValueError"
    # The API the dashboard reads shows the trace like one of the app's own.
    api = f"{served.url}/watchkeeper/api/v1/traces"
    key = {"X-API-Key": API_KEY}
    [summary] = httpx.get(api, params={"trace_id": f"{trace_id:032x}"}, headers=key).json()["items"]
    assert (summary["name"], summary["spans"], summary["errors"]) == ("GET /checkout/{cart}", 3, 1)
    assert summary["cost"] == pytest.approx(call.cost)
    assert httpx.get(f"{api}/{trace_id:032x}", headers=key).json()["span_count"] == 3
    sdk_span = next(span for span in spans if span.name == "chat gpt-4o-mini")
    assert call.span_id == f"{sdk_span.context.span_id:016x}"
    assert call.start.timestamp() == pytest.approx(sdk_span.start_time / 1e9, abs=1e-6)
    assert call.duration == pytest.approx((sdk_span.end_time - sdk_span.start_time) / 1e9)


def _json_span(trace_hex: str, span_hex: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": trace_hex,
        "spanId": span_hex,
        "name": name,
        "kind": 3,  # CLIENT, as a number, which OTLP JSON allows
        "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(START_NS + 1_500_000_000),
        **extra,
    }


def test_a_hand_written_otlp_json_body_with_hex_ids_is_stored(served: Served) -> None:
    trace_hex, parent_hex, span_hex = (
        secrets.token_hex(16),
        secrets.token_hex(8),
        "00f067aa0ba902b7",
    )
    body = otlp_json(
        "Spans",
        [
            _json_span(
                trace_hex,
                span_hex,
                "llm call",
                parentSpanId=parent_hex,
                attributes=[
                    {"key": "llm.provider", "value": {"stringValue": "anthropic"}},
                    {"key": "llm.model_name", "value": {"stringValue": "claude-3-5-haiku"}},
                    {"key": "llm.token_count.prompt", "value": {"intValue": "1200"}},
                    {"key": "llm.token_count.completion", "value": {"intValue": 80}},
                    {"key": "user.id", "value": {"stringValue": "u-9"}},
                ],
                status={"code": 2, "message": "overloaded"},
            ),
            # Refused, not the whole request: a span id must be 8 bytes.
            _json_span(trace_hex, "abcd", "broken"),
        ],
    )
    answer = httpx.post(served.traces_url, json=body, headers={"X-API-Key": INGEST_KEY})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    partial = answer.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "invalid span id" in partial["errorMessage"]

    [stored] = served.trace(int(trace_hex, 16))
    assert stored.trace_id == trace_hex
    assert stored.span_id == span_hex
    assert stored.parent_id == parent_hex
    assert (stored.kind, stored.name, stored.operation) == ("integration", "anthropic", "llm call")
    assert (stored.model, stored.input_tokens, stored.output_tokens) == (
        "claude-3-5-haiku",
        1200,
        80,
    )
    assert stored.start.timestamp() == START_NS / 1e9
    assert stored.duration == pytest.approx(1.5)
    assert (stored.status, stored.error_message) == ("error", "overloaded")
    assert stored.user_id == "u-9"
    assert stored.attributes["service.name"] == "go-api"
    assert stored.attributes["otel.kind"] == "client"


def test_a_gzip_json_body_is_read(served: Served) -> None:
    trace_hex = secrets.token_hex(16)
    body = gzip.compress(
        json.dumps(otlp_json("Spans", [_json_span(trace_hex, "1" * 16, "GET")])).encode()
    )
    answer = httpx.post(
        served.traces_url,
        content=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {API_KEY}",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}
    assert [span.name for span in served.trace(int(trace_hex, 16))] == ["GET"]


def test_an_ingest_key_sends_traces_but_reads_nothing(served: Served) -> None:
    overview = f"{served.url}/watchkeeper/api/v1/overview"
    assert httpx.get(overview, headers={"X-API-Key": INGEST_KEY}).status_code == 401
    assert httpx.get(overview, headers={"X-API-Key": API_KEY}).status_code == 200
    dashboard_data = f"{served.url}/watchkeeper/api/v1/traces"
    assert httpx.get(dashboard_data, headers={"X-API-Key": INGEST_KEY}).status_code == 401


def _protobuf_status(answer: httpx.Response) -> Status:
    assert answer.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(answer.content)


def test_bad_requests_get_a_clear_4xx_and_store_nothing(served: Served) -> None:
    trace_hex = secrets.token_hex(16)
    good = otlp_json("Spans", [_json_span(trace_hex, "2" * 16, "kept")])
    assert httpx.post(served.traces_url, json=good, headers={"X-API-Key": INGEST_KEY}).is_success
    before = served.stored()
    assert [span.name for span in before if span.trace_id == trace_hex] == ["kept"]

    protobuf = {"Content-Type": "application/x-protobuf", "X-API-Key": INGEST_KEY}
    json_headers = {"Content-Type": "application/json", "X-API-Key": INGEST_KEY}
    bomb = gzip.compress(b"\0" * (32 * LIMIT))  # ~32 KiB inflating to 32 MiB

    answer = httpx.post(served.traces_url, content=b"\xff\xff\xff\xff", headers=protobuf)
    assert answer.status_code == 400
    assert "not a valid OTLP protobuf message" in _protobuf_status(answer).message

    answer = httpx.post(served.traces_url, content=b'{"resourceSpans": [', headers=json_headers)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["message"]

    not_hex = otlp_json("Spans", [_json_span("zz" * 16, "3" * 16, "bad")])
    answer = httpx.post(served.traces_url, json=not_hex, headers={"X-API-Key": INGEST_KEY})
    assert answer.status_code == 400
    assert "traceId must be a hex string" in answer.json()["message"]

    answer = httpx.post(served.traces_url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415

    answer = httpx.post(
        served.traces_url, content=bomb, headers={**protobuf, "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert "once decompressed" in _protobuf_status(answer).message

    answer = httpx.post(
        served.traces_url, content=bomb[:-20], headers={**json_headers, "Content-Encoding": "gzip"}
    )
    assert answer.status_code in (400, 413)  # truncated, and too large where it got to

    answer = httpx.post(
        served.traces_url,
        content=gzip.compress(b"{}")[:-10],
        headers={**json_headers, "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 400
    assert "not valid gzip" in answer.json()["message"]

    answer = httpx.post(
        served.traces_url, content=b"{}", headers={**json_headers, "Content-Encoding": "br"}
    )
    assert answer.status_code == 415

    answer = httpx.post(served.traces_url, content=b" " * (LIMIT + 1), headers=json_headers)
    assert answer.status_code == 413

    for key in ("not-a-key", None):
        headers = {"Content-Type": "application/x-protobuf"} | ({"X-API-Key": key} if key else {})
        answer = httpx.post(served.traces_url, content=b"", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert _protobuf_status(answer).code == 16  # UNAUTHENTICATED

    after = served.stored()
    assert [(span.trace_id, span.span_id) for span in after] == [
        (span.trace_id, span.span_id) for span in before
    ]
