"""How OpenTelemetry spans become Watchkeeper spans: kinds, names, usage, identity, bounds."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.otlp.common import MAX_ATTRIBUTES, MAX_VALUE_CHARS, Mapped
from watchkeeper.otlp.spans import map_spans

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
START = 1_700_000_000_000_000_000


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_value(item) for item in value]))
    return AnyValue(string_value=value)


def _pairs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in attributes.items()]


def _span(
    name: str = "op",
    kind: int = Span.SPAN_KIND_INTERNAL,
    span_id: int = 1,
    parent_id: int = 0,
    **attributes: Any,
) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent_id.to_bytes(8, "big") if parent_id else b"",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=START,
        end_time_unix_nano=START + 250_000_000,
        attributes=_pairs({key.replace("__", "."): value for key, value in attributes.items()}),
    )


def _map(*spans: Span, resource: dict[str, Any] | None = None) -> Mapped[Any]:
    return map_spans(
        ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(attributes=_pairs(resource or {})),
                    scope_spans=[ScopeSpans(spans=list(spans))],
                )
            ]
        )
    )


def _one(span: Span, resource: dict[str, Any] | None = None) -> Any:
    [mapped] = _map(span, resource=resource).events
    return mapped


@pytest.mark.parametrize(
    ("span", "kind", "name", "operation"),
    [
        (_span("GET /a/{id}", Span.SPAN_KIND_SERVER), SpanKind.REQUEST, "GET /a/{id}", None),
        (
            _span("GET", Span.SPAN_KIND_SERVER, http__request__method="GET", http__route="/a/{id}"),
            SpanKind.REQUEST,
            "GET /a/{id}",
            None,
        ),
        (
            _span("chat", Span.SPAN_KIND_CLIENT, gen_ai__provider__name="gcp.gemini"),
            SpanKind.INTEGRATION,
            "gemini",
            "chat",
        ),
        (
            _span("ChatOpenAI", openinference__span__kind="LLM", llm__provider="OpenAI"),
            SpanKind.INTEGRATION,
            "openai",
            "ChatOpenAI",
        ),
        (
            _span("GET", Span.SPAN_KIND_CLIENT, url__full="https://api.example.com/v1?q=1"),
            SpanKind.INTEGRATION,
            "api.example.com",
            "GET",
        ),
        (
            _span("SELECT", Span.SPAN_KIND_CLIENT, db__system="postgresql"),
            SpanKind.INTEGRATION,
            "postgresql",
            "SELECT",
        ),
        (_span("lonely", Span.SPAN_KIND_CLIENT), SpanKind.INTERNAL, "lonely", None),
        (
            _span("execute_tool", gen_ai__operation__name="execute_tool", gen_ai__tool__name="s"),
            SpanKind.TOOL,
            "s",
            None,
        ),
        (
            _span("run", openinference__span__kind="AGENT", agent__name="planner"),
            SpanKind.AGENT,
            "planner",
            None,
        ),
        (_span("send", Span.SPAN_KIND_PRODUCER), SpanKind.QUEUE, "send", None),
        (_span("", Span.SPAN_KIND_UNSPECIFIED), SpanKind.INTERNAL, "unnamed", None),
    ],
)
def test_kinds_and_names(span: Span, kind: SpanKind, name: str, operation: str | None) -> None:
    mapped = _one(span)
    assert (mapped.kind, mapped.name, mapped.operation) == (kind, name, operation)


def test_genai_usage_from_either_convention() -> None:
    new = _one(
        _span(
            gen_ai__system="openai",
            gen_ai__request__model="gpt-4o-mini",
            gen_ai__response__model="gpt-4o-mini-2024-07-18",
            gen_ai__usage__input_tokens=10,
            gen_ai__usage__output_tokens=3,
        )
    )
    assert (new.model, new.input_tokens, new.output_tokens) == ("gpt-4o-mini-2024-07-18", 10, 3)
    old = _one(
        _span(
            gen_ai__system="openai",
            gen_ai__usage__prompt_tokens="12",
            gen_ai__usage__completion_tokens=4.0,
        )
    )
    assert (old.input_tokens, old.output_tokens) == (12, 4)
    odd = _one(_span(llm__model_name="m", llm__token_count__prompt=-1))
    assert (odd.model, odd.input_tokens) == ("m", None)


def test_identity_from_span_resource_then_ancestor() -> None:
    mapped = _map(
        _span("child", span_id=2, parent_id=1),
        _span("grandchild", span_id=3, parent_id=2, enduser__id="own-user"),
        _span("root", Span.SPAN_KIND_SERVER, span_id=1, user__id="u", session__id="s"),
        resource={"service.name": "shop", "tenant.id": "acme", "process.pid": 7},
    )
    by_name = {span.name: span for span in mapped.events}
    assert (by_name["root"].user_id, by_name["root"].org_id) == ("u", "acme")
    assert (by_name["child"].user_id, by_name["child"].session_id) == ("u", "s")
    assert (by_name["grandchild"].user_id, by_name["grandchild"].session_id) == ("own-user", "s")
    assert by_name["child"].parent_id == 1
    attributes = by_name["root"].attributes
    assert attributes["service.name"] == "shop"
    assert "process.pid" not in attributes  # resource details repeat on every span: not kept


def test_times_ids_and_errors() -> None:
    span = _span("boom", span_id=0xABC)
    span.status.code = span.status.STATUS_CODE_ERROR
    event = span.events.add(name="exception")
    event.attributes.extend(_pairs({"exception.type": "KeyError", "exception.message": "k"}))
    mapped = _one(span)
    assert mapped.trace_id == int.from_bytes(TRACE, "big")
    assert (mapped.span_id, mapped.parent_id) == (0xABC, 0)
    assert mapped.start == START / 1e9
    assert mapped.duration == pytest.approx(0.25)
    assert (mapped.status, mapped.error_type, mapped.error_message) == (
        SpanStatus.ERROR,
        "KeyError",
        "k",
    )
    assert mapped.attributes["service.name"] == "unknown_service"


def test_spans_without_ids_or_start_are_rejected_by_reason() -> None:
    no_trace = _span()
    no_trace.trace_id = b"\0" * 16
    short_id = _span()
    short_id.span_id = b"\1"
    no_start = _span()
    no_start.start_time_unix_nano = 0
    mapped = _map(no_trace, short_id, no_start, _span())
    assert len(mapped.events) == 1
    assert mapped.rejected == {
        "an invalid trace id": 1,
        "an invalid span id": 1,
        "no start time": 1,
    }


def test_attributes_are_bounded() -> None:
    many: dict[str, Any] = {f"key{number}": number for number in range(200)}
    mapped = _one(_span(big="x" * 10_000, items=list(range(100)), **many))
    assert len(mapped.attributes) == MAX_ATTRIBUTES
    assert len(mapped.attributes["big"]) == MAX_VALUE_CHARS
    assert len(mapped.attributes["items"]) == 32
