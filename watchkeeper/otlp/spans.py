"""OpenTelemetry spans as Watchkeeper spans, so other services' traces read like the app's own.

Kinds: a SERVER span is a ``request``; a span carrying a model, token counts or a GenAI/LLM
provider (OpenTelemetry GenAI ``gen_ai.*``, OpenInference ``llm.*``) is an ``integration`` named
after the provider, whatever its OTel kind (OpenInference marks LLM calls INTERNAL); a CLIENT span
with a peer (HTTP, RPC, database) is an ``integration`` named after the peer; GenAI tool and agent
operations (``gen_ai.operation.name``, OpenInference's span kind) are ``tool`` and ``agent``;
PRODUCER and CONSUMER spans are ``queue``; everything else is ``internal``. An integration keeps
the OTel span name as its operation, as the app's own integration spans keep theirs.

Attributes are kept, bounded in number and size, beside the resource's ``service.name`` (the
store's service column names the process that wrote a batch, so the sender's own service lives in
the attributes). Span events and links are not kept, except an exception event's type and message
on a failed span. Identity (``enduser.id``/``user.id``, ``session.id``, ``org.id``) is read from
the span, then its resource, then its nearest ancestor in the same request.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from watchkeeper.model.events import Attributes, Span, SpanKind, SpanStatus
from watchkeeper.otlp.common import (
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    ORG_KEYS,
    SESSION_KEYS,
    USER_KEYS,
    Lookup,
    Mapped,
    attributes_of,
    bounded,
    clip,
    identifier,
    resource_kept,
    short,
)
from watchkeeper.recording.attributes import METHOD, ROUTE, STATUS_CODE

OtelSpan = trace_pb2.Span

MAX_ANCESTORS = 64

OTEL_KIND = "otel.kind"
OTEL_SCOPE = "otel.scope"

MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
"""The response's model first: it names the exact version, which prices best."""
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
PEER_KEYS = ("peer.service", "server.address", "net.peer.name", "rpc.service", "db.system")
URL_KEYS = ("url.full", "http.url")
METHOD_KEYS = ("http.request.method", "http.method")
STATUS_CODE_KEYS = ("http.response.status_code", "http.status_code")
GENAI_KEYS = (*PROVIDER_KEYS, *MODEL_KEYS, *INPUT_TOKEN_KEYS, *OUTPUT_TOKEN_KEYS)
PEER_OR_URL_KEYS = (*PEER_KEYS, *URL_KEYS, "rpc.system")
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name")

PROVIDER_NAMES: Mapping[str, str] = {
    "az.ai.openai": "azure-openai",
    "azure.ai.openai": "azure-openai",
    "gcp.gemini": "gemini",
    "gcp.vertex_ai": "vertex-ai",
    "aws.bedrock": "bedrock",
    "mistral_ai": "mistral",
    "x_ai": "xai",
}
"""GenAI provider ids that Watchkeeper's own integrations name otherwise (see
``instrumentation.hosts``), so a provider's calls from every service share one name."""

OPENINFERENCE_KINDS: Mapping[str, SpanKind] = {
    "LLM": SpanKind.INTEGRATION,
    "EMBEDDING": SpanKind.INTEGRATION,
    "TOOL": SpanKind.TOOL,
    "AGENT": SpanKind.AGENT,
}
GEN_AI_OPERATION_KINDS: Mapping[str, SpanKind] = {
    "execute_tool": SpanKind.TOOL,
    "invoke_agent": SpanKind.AGENT,
    "create_agent": SpanKind.AGENT,
}
QUEUE_KINDS = (OtelSpan.SPAN_KIND_PRODUCER, OtelSpan.SPAN_KIND_CONSUMER)


def map_spans(request: ExportTraceServiceRequest) -> Mapped[Span]:
    mapped: Mapped[Span] = Mapped()
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        kept = resource_kept(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for otel_span in scope_spans.spans:
                problem = _problem(otel_span)
                if problem is not None:
                    mapped.rejected[problem] += 1
                    continue
                mapped.events.append(map_span(otel_span, resource, kept, scope))
    inherit_identity(mapped.events)
    return mapped


def inherit_identity(spans: list[Span]) -> None:
    """Give spans without a user, organisation or session those of their nearest ancestor.

    OpenTelemetry sets ``enduser.id`` on the request span only, where Watchkeeper's own child
    spans inherit their request's identity; without this, an LLM call's cost would belong to
    no user. Only ancestors in the same export are known: a batch span processor usually sends
    a short request's spans together, but a child sent before its parent keeps only its own.
    """
    by_id = {(span.trace_id, span.span_id): span for span in spans}
    for span in spans:
        parent_id, steps = span.parent_id, 0
        while parent_id and steps < MAX_ANCESTORS and not _has_identity(span):
            parent = by_id.get((span.trace_id, parent_id))
            if parent is None:
                break
            span.user_id = span.user_id or parent.user_id
            span.org_id = span.org_id or parent.org_id
            span.session_id = span.session_id or parent.session_id
            parent_id, steps = parent.parent_id, steps + 1


def _has_identity(span: Span) -> bool:
    return bool(span.user_id and span.org_id and span.session_id)


def _problem(span: OtelSpan) -> str | None:
    """Why a span cannot be recorded, or ``None``: ids and a start are all Watchkeeper needs."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "an invalid trace id"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "an invalid span id"
    if span.start_time_unix_nano == 0:
        return "no start time"
    return None


def map_span(otel_span: OtelSpan, resource: Attributes, kept: Attributes, scope: str) -> Span:
    attributes = attributes_of(otel_span.attributes)
    found = Lookup(attributes, resource)
    kind = _kind(otel_span.kind, attributes)
    name, operation = _name(kind, otel_span, found)
    start_ns = otel_span.start_time_unix_nano
    span = Span(
        kind=kind,
        name=name,
        start=start_ns / 1e9,
        duration=max(otel_span.end_time_unix_nano - start_ns, 0) / 1e9,
        trace_id=int.from_bytes(otel_span.trace_id, "big"),
        span_id=int.from_bytes(otel_span.span_id, "big"),
        parent_id=identifier(otel_span.parent_span_id, 8),
        operation=operation,
        user_id=found.identity(USER_KEYS),
        org_id=found.identity(ORG_KEYS),
        session_id=found.identity(SESSION_KEYS),
        model=short(found.text(MODEL_KEYS)),
        input_tokens=found.count(INPUT_TOKEN_KEYS),
        output_tokens=found.count(OUTPUT_TOKEN_KEYS),
    )
    if otel_span.status.code == trace_pb2.Status.STATUS_CODE_ERROR:
        _failed(span, otel_span, attributes)
    span.attributes = bounded(_own_attributes(otel_span, found, kept, scope), attributes)
    return span


def _kind(otel_kind: int, attributes: Attributes) -> SpanKind:
    if otel_kind == OtelSpan.SPAN_KIND_SERVER:
        return SpanKind.REQUEST
    openinference = OPENINFERENCE_KINDS.get(str(attributes.get("openinference.span.kind", "")))
    if openinference is not None:
        return openinference
    operation = GEN_AI_OPERATION_KINDS.get(str(attributes.get("gen_ai.operation.name", "")))
    if operation is not None:
        return operation
    if any(key in attributes for key in GENAI_KEYS):
        return SpanKind.INTEGRATION
    if otel_kind == OtelSpan.SPAN_KIND_CLIENT and any(
        key in attributes for key in PEER_OR_URL_KEYS
    ):
        return SpanKind.INTEGRATION
    if otel_kind in QUEUE_KINDS:
        return SpanKind.QUEUE
    return SpanKind.INTERNAL


def _name(kind: SpanKind, otel_span: OtelSpan, found: Lookup) -> tuple[str, str | None]:
    """The span's name and operation, following how Watchkeeper names its own spans."""
    otel_name = otel_span.name[:MAX_NAME_CHARS] or "unnamed"
    if kind is SpanKind.INTEGRATION:
        return clip(_integration_name(found) or otel_name), otel_name
    if kind is SpanKind.TOOL:
        return clip(found.text(TOOL_NAME_KEYS) or otel_name), None
    if kind is SpanKind.AGENT:
        return clip(found.text(AGENT_NAME_KEYS) or otel_name), None
    if kind is SpanKind.REQUEST:
        method, route = found.text(METHOD_KEYS), found.text(("http.route",))
        if method and route:
            # The app's own request spans are named "GET /items/{id}": one name per route.
            return clip(f"{method} {route}"), None
    return otel_name, None


def _integration_name(found: Lookup) -> str | None:
    provider = found.text(PROVIDER_KEYS)
    if provider:
        lowered = provider.lower()
        return PROVIDER_NAMES.get(lowered, lowered)
    peer = found.text(PEER_KEYS)
    if peer:
        return peer
    url = found.text(URL_KEYS)
    if url:
        return urlsplit(url).hostname or None
    return None


def _failed(span: Span, otel_span: OtelSpan, attributes: Attributes) -> None:
    span.status = SpanStatus.ERROR
    error_type = attributes.get("error.type")
    message = otel_span.status.message
    for event in otel_span.events:
        if event.name == "exception":
            details = attributes_of(event.attributes)
            error_type = details.get("exception.type", error_type)
            message = message or str(details.get("exception.message", ""))
            break
    span.error_type = clip(str(error_type)) if error_type else None
    span.error_message = message[:MAX_VALUE_CHARS] or None


def _own_attributes(otel_span: OtelSpan, found: Lookup, kept: Attributes, scope: str) -> Attributes:
    """What Watchkeeper reads itself (request metrics by route), then where the span came from."""
    own: Attributes = {}
    method = found.text(METHOD_KEYS)
    if method:
        own[METHOD] = method
    route = found.text(("http.route",))
    if route:
        own[ROUTE] = clip(route)
    status_code = found.count(STATUS_CODE_KEYS)
    if status_code is not None:
        own[STATUS_CODE] = status_code
    own.update(kept)
    own[OTEL_KIND] = OtelSpan.SpanKind.Name(otel_span.kind).removeprefix("SPAN_KIND_").lower()
    if scope:
        own[OTEL_SCOPE] = clip(scope)
    return own
