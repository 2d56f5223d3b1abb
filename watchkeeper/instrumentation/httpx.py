"""Outbound HTTP calls made with httpx, recorded as integration spans with trace propagation.

Both ``httpx`` and ``httpx2`` are patched when installed: the openai and anthropic clients send
through httpx2, and patching their transport is what puts a ``traceparent`` on their requests.
Calls already recorded by an LLM integration are only propagated, not recorded again (see
:mod:`watchkeeper.instrumentation.propagation`).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Mapping
from typing import Any

from watchkeeper.instrumentation.hosts import HostMap
from watchkeeper.instrumentation.patching import Patches
from watchkeeper.instrumentation.propagation import (
    TRACEPARENT,
    recording_span,
    traceparent,
    when_closed,
)
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.model.outbound import OWN_REQUEST
from watchkeeper.recording.attributes import METHOD, REQUEST_SIZE, RESPONSE_SIZE, STATUS_CODE
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan

CLIENT_MODULES = ("httpx", "httpx2")
PATH_SEGMENTS_LIMIT = 8
SEGMENT_LIMIT = 48
ID_PLACEHOLDER = "{id}"

_ID_SEGMENT = re.compile(
    r"""^(?:
        \d+                                 # numeric ids
        | [0-9a-fA-F-]{16,}                 # uuids and hex digests
        | [a-z]{2,12}[-_][A-Za-z0-9]{10,}   # prefixed random ids: file-…, asst_…, chatcmpl-…
    )$""",
    re.VERBOSE,
)
# Long unbroken runs with digits are keys and tokens; model names have dashes, dots or colons.
_TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9_=]{20,}$")
SPAN_EXTENSION = "watchkeeper.span"
"""Where a request carries the span recording it, for the transports below the client
(resilience's writes its attempts and retries onto it)."""
_patches = Patches("httpx")
_state: _Outbound | None = None


def path_shape(path: str) -> str:
    """``path`` with ids replaced by ``{id}``, cut to a few short segments: a bounded name."""
    segments = path.split("/")
    shaped = [_shape_segment(segment) for segment in segments[: PATH_SEGMENTS_LIMIT + 1]]
    if len(segments) > PATH_SEGMENTS_LIMIT + 1:
        shaped.append("…")
    return "/".join(shaped) or "/"


def _shape_segment(segment: str) -> str:
    if _ID_SEGMENT.match(segment) or (
        _TOKEN_SEGMENT.match(segment) and any(character.isdigit() for character in segment)
    ):
        return ID_PLACEHOLDER
    return segment[:SEGMENT_LIMIT]


def _propagate(request: Any, span: Span) -> None:
    # A traceparent set by the caller (or another tracer) names the caller's own context.
    if TRACEPARENT not in request.headers:
        request.headers[TRACEPARENT] = traceparent(span)


class _Outbound:
    def __init__(self, recorder: Recorder, hosts: HostMap) -> None:
        self.recorder = recorder
        self.hosts = hosts

    def begin(self, request: Any) -> ActiveSpan | None:
        """Open the call's span, or ``None`` when an LLM span already records this call or the
        request is Watchkeeper's own (an alert notification)."""
        try:
            if request.extensions.get(OWN_REQUEST):
                return None
            owner = recording_span.get()
            if owner is not None:
                _propagate(request, owner)
                return None
            url = request.url
            span = self.recorder.span(
                self.hosts.name_for(url.host),
                SpanKind.INTEGRATION,
                f"{request.method} {path_shape(url.path)}",
            )
            span.set_attribute(METHOD, request.method)
            request.extensions[SPAN_EXTENSION] = span
            length = request.headers.get("content-length")
            if length is not None and length.isdigit():
                span.set_attribute(REQUEST_SIZE, int(length))
            _propagate(request, span)
        except Exception as error:
            self.recorder.report_internal_error("recording an httpx request", error)
            return None
        return span

    def failed(self, span: ActiveSpan, error: BaseException) -> None:
        try:
            span.record_error(error)
            span.end()
        except Exception as internal:
            self.recorder.report_internal_error("recording an httpx error", internal)

    def received(self, span: ActiveSpan, response: Any) -> None:
        try:
            status = response.status_code
            span.set_attribute(STATUS_CODE, status)
            if status >= 500:
                span.set_status(SpanStatus.ERROR)
                span.error_type = "HTTPStatusError"
                span.error_message = f"{status} {response.reason_phrase}"
            if response.is_closed:
                _end(span, response)
            else:
                # A streamed response: the call lasts until the caller is done reading it.
                when_closed(response, functools.partial(_end, span, response))
        except Exception as error:
            self.recorder.report_internal_error("recording an httpx response", error)


def _end(span: ActiveSpan, response: Any) -> None:
    span.set_attribute(RESPONSE_SIZE, response.num_bytes_downloaded)
    span.end()


def _wrap_send(original: Any) -> Any:
    @functools.wraps(original)
    def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        state = _state
        span = state.begin(request) if state is not None else None
        if state is None or span is None:
            return original(client, request, *args, **kwargs)
        try:
            response = original(client, request, *args, **kwargs)
        except BaseException as error:
            state.failed(span, error)
            raise
        state.received(span, response)
        return response

    return send


def _wrap_async_send(original: Any) -> Any:
    @functools.wraps(original)
    async def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        state = _state
        span = state.begin(request) if state is not None else None
        if state is None or span is None:
            return await original(client, request, *args, **kwargs)
        try:
            response = await original(client, request, *args, **kwargs)
        except BaseException as error:
            state.failed(span, error)
            raise
        state.received(span, response)
        return response

    return send


def instrument_httpx(
    recorder: Recorder | None = None, hosts: Mapping[str, str] | None = None
) -> None:
    """Record every call sent by httpx clients as a child span named after its integration.

    ``hosts`` adds host -> integration names to the built-in ones and to the
    ``integration_hosts`` setting. Calling again only updates the recorder and hosts.
    """
    global _state  # noqa: PLW0603 - the patched methods are process-wide, so is their state
    recorder = recorder or get_recorder()
    _state = _Outbound(recorder, HostMap(recorder.settings.integration_hosts, hosts or {}))
    if _patches.applied:
        return
    modules = []
    for name in CLIENT_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    if not modules:
        _state = None
        raise ImportError("instrument_httpx() needs the httpx package: pip install httpx")
    for module in modules:
        _patches.apply(module.Client, "send", _wrap_send)
        _patches.apply(module.AsyncClient, "send", _wrap_async_send)


def uninstrument_httpx() -> None:
    """Put the original ``send`` methods back; calls in flight finish being recorded."""
    global _state  # noqa: PLW0603
    _patches.restore()
    _state = None
