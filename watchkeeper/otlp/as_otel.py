"""Watchkeeper spans as OpenTelemetry SDK spans, for the OTLP exporter: ingest's mapping inverted.

Ids, times, status and the span's own attributes are kept. What Watchkeeper holds in fields is
written in the OpenTelemetry semantic conventions, so any backend reads it: identity as
``enduser.id``/``session.id`` (and ``org.id``, which ingest reads back), request spans with the
HTTP conventions, AI calls with the GenAI ones (provider, model, operation, token counts; the
cost as ``watchkeeper.cost_usd``, which no convention names), tools and agents as GenAI
``execute_tool``/``invoke_agent``. Exported spans ingested by another Watchkeeper come back as
the same spans: an integration's operation is the OpenTelemetry name, its provider or peer the
Watchkeeper name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace import SpanKind as OtelKind
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from watchkeeper.model.events import Span, SpanKind, SpanStatus, has_usage
from watchkeeper.recording.attributes import METHOD, ROUTE, STATUS_CODE

KINDS: Mapping[SpanKind, OtelKind] = {
    SpanKind.REQUEST: OtelKind.SERVER,
    SpanKind.WEBSOCKET: OtelKind.SERVER,
    SpanKind.INTEGRATION: OtelKind.CLIENT,
    SpanKind.QUEUE: OtelKind.CONSUMER,
}
"""Tools, agents and internal work are INTERNAL, OpenTelemetry's default."""

GEN_AI_OPERATIONS: Mapping[str, str] = {
    "chat.completions": "chat",
    "responses": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
"""``gen_ai.operation.name`` for the AI clients' operations; others are kept as they are."""

SEMANTIC_NAMES: Mapping[str, str] = {
    METHOD: "http.request.method",
    ROUTE: "http.route",
    STATUS_CODE: "http.response.status_code",
}
"""Watchkeeper's own request attributes, also under the HTTP conventions' names."""

COST = "watchkeeper.cost_usd"
STATUS = "watchkeeper.status"
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
INT64 = range(-(2**63), 2**63)
SURROGATE = re.compile("[\ud800-\udfff]")


def otel_span(span: Span, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    start = int(span.start * 1e9)
    trace_id = span.trace_id
    parent = (
        SpanContext(trace_id, span.parent_id, is_remote=False, trace_flags=SAMPLED)
        if span.parent_id
        else None
    )
    return ReadableSpan(
        name=_name(span),
        context=SpanContext(trace_id, span.span_id, is_remote=False, trace_flags=SAMPLED),
        parent=parent,
        resource=resource,
        attributes=attributes(span),
        kind=KINDS.get(span.kind, OtelKind.INTERNAL),
        status=_status(span),
        start_time=start,
        end_time=start + max(int(span.duration * 1e9), 0),
        instrumentation_scope=scope,
    )


def _name(span: Span) -> str:
    if span.kind is SpanKind.INTEGRATION and span.operation:
        # As ingest reads it back: the integration's name travels as its provider or peer.
        return text(span.operation)
    return text(span.name)


def _status(span: Span) -> Status:
    if span.status is SpanStatus.ERROR:
        message = span.error_message
        return Status(StatusCode.ERROR, text(message) if message else None)
    if span.status is SpanStatus.CANCELLED:
        # OpenTelemetry has no "cancelled": not an error, and not known to have succeeded.
        return Status(StatusCode.UNSET)
    return Status(StatusCode.OK)


def attributes(span: Span) -> dict[str, AttributeValue]:
    """The span's attributes as OpenTelemetry values, then what its fields say."""
    result: dict[str, AttributeValue] = {}
    for key, value in (span.attributes or {}).items():
        converted = attribute_value(value)
        if converted is not None:
            result[text(key)] = converted
            semantic = SEMANTIC_NAMES.get(key)
            if semantic is not None:
                result[semantic] = converted
    for key, value in (
        ("enduser.id", span.user_id),
        ("session.id", span.session_id),
        ("org.id", span.org_id),
        ("error.type", span.error_type),
    ):
        if value:
            result[key] = text(value)
    if span.status is SpanStatus.CANCELLED:
        result[STATUS] = SpanStatus.CANCELLED.value
    kind = span.kind
    if kind is SpanKind.TOOL:
        result["gen_ai.operation.name"] = "execute_tool"
        result["gen_ai.tool.name"] = text(span.name)
    elif kind is SpanKind.AGENT:
        result["gen_ai.operation.name"] = "invoke_agent"
        result["gen_ai.agent.name"] = text(span.name)
    elif kind is SpanKind.INTEGRATION:
        if span.model is not None or has_usage(span):
            _ai_call(span, result)
        else:
            result["peer.service"] = text(span.name)
    return result


def _ai_call(span: Span, result: dict[str, AttributeValue]) -> None:
    # gen_ai.system is the older name of the provider; many backends still read only it.
    result["gen_ai.provider.name"] = result["gen_ai.system"] = text(span.name)
    if span.operation:
        result["gen_ai.operation.name"] = text(
            GEN_AI_OPERATIONS.get(span.operation, span.operation)
        )
    if span.model is not None:
        result["gen_ai.request.model"] = text(span.model)
    if span.input_tokens is not None:
        result["gen_ai.usage.input_tokens"] = span.input_tokens
    if span.output_tokens is not None:
        result["gen_ai.usage.output_tokens"] = span.output_tokens
    if span.cost is not None:
        result[COST] = span.cost


def attribute_value(value: Any) -> AttributeValue | None:
    """A value OpenTelemetry can carry: a primitive, or a list of one primitive type; anything
    else (objects, mixed lists, integers beyond 64 bits) as JSON text. ``None`` is left out."""
    if value is None:
        return None
    if isinstance(value, str):
        return text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value) if value in INT64 else str(value)
    if isinstance(value, bool | float):
        return value
    if isinstance(value, list | tuple) and _one_primitive_type(value):
        return [text(item) for item in value] if value and type(value[0]) is str else list(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return text(str(value))


def _one_primitive_type(items: Sequence[Any]) -> bool:
    kinds = {type(item) for item in items}
    if not kinds:
        return True
    if len(kinds) > 1 or not kinds <= {bool, str, int, float}:
        return False
    return int not in kinds or all(item in INT64 for item in items)


def text(value: str) -> str:
    """``value`` as protobuf can encode it: a lone surrogate (from a badly decoded byte string)
    would fail the whole export, so it becomes U+FFFD, as the store makes it too."""
    return value if value.isascii() else SURROGATE.sub("\ufffd", value)
