"""One span per HTTP request or WebSocket connection, as a pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so streaming responses pass through untouched and are timed
to their last byte. The span is named after the matched route template, which Starlette leaves in
``scope["route"]``, so ``/api/users/42`` and ``/api/users/43`` are one name; unmatched paths all
share :data:`~watchkeeper.recording.attributes.UNMATCHED_ROUTE`. Exceptions are recorded and
re-raised as the same object. Recording failures are contained and never reach the app.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from watchkeeper.instrumentation.identity import identify
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.instrumentation.traceparent import parse_traceparent
from watchkeeper.recording import attributes
from watchkeeper.recording.model import SpanKind, SpanStatus
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STACK_LIMIT = 8_000
SERVER_ERROR = 500


class WatchkeeperMiddleware:
    def __init__(self, app: ASGIApp, recorder: Recorder, options: RequestOptions) -> None:
        self.app = app
        self.recorder = recorder
        self.options = options
        self._trace_header = options.trace_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (
            kind not in ("http", "websocket")
            or not self.recorder.enabled
            or scope["path"].startswith(self.options.exclude_paths)
        ):
            await self.app(scope, receive, send)
            return
        span = self._open(scope, SpanKind.REQUEST if kind == "http" else SpanKind.WEBSOCKET)
        if span is None:
            await self.app(scope, receive, send)
            return
        if kind == "http":
            await self._http(span, scope, receive, send)
        else:
            await self._websocket(span, scope, receive, send)

    def _open(self, scope: Scope, kind: SpanKind) -> ActiveSpan | None:
        try:
            headers = dict(scope.get("headers") or ())
            trace_id, parent_id = parse_traceparent(headers.get(b"traceparent"))
            span = self.recorder.span(attributes.UNMATCHED_ROUTE, kind, None, trace_id, parent_id)
            identity = identify(self.options.identity, scope, headers)
            span.set_identity(identity.user_id, identity.org_id, identity.session_id)
            return span.__enter__()
        except Exception as error:
            self.recorder.report_internal_error("starting a request span", error)
            return None

    async def _http(self, span: ActiveSpan, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = _Exchange()

        async def receive_counting() -> Message:
            message = await receive()
            state.request_bytes += len(message.get("body", b""))
            return message

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status = message["status"]
                state.first_byte = time.perf_counter() - started
                message["headers"] = [
                    *message.get("headers", ()),
                    (self._trace_header, f"{span.trace_id:032x}".encode()),
                ]
            elif message["type"] == "http.response.body":
                state.response_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    state.finished = True
                    self._close(span, scope, state)
                    return
            await send(message)

        try:
            await self.app(scope, receive_counting, send_timed)
        except BaseException as error:
            if not state.finished:
                state.status = state.status or SERVER_ERROR
                self._fail(span, error)
                self._close(span, scope, state)
            raise
        if not state.finished:  # the app returned without a final body: close what we have
            self._close(span, scope, state)

    async def _websocket(
        self, span: ActiveSpan, scope: Scope, receive: Receive, send: Send
    ) -> None:
        state = _Exchange()

        async def receive_counting() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                state.messages_in += 1
            return message

        async def send_counting(message: Message) -> None:
            if message["type"] == "websocket.send":
                state.messages_out += 1
            await send(message)

        try:
            await self.app(scope, receive_counting, send_counting)
        except BaseException as error:
            self._fail(span, error)
            raise
        finally:
            self._close(span, scope, state)

    def _fail(self, span: ActiveSpan, error: BaseException) -> None:
        try:
            span.record_error(error)
            stack = "".join(traceback.format_exception(error))
            span.set_attribute(attributes.STACK, stack[-STACK_LIMIT:])
        except Exception as internal:
            self.recorder.report_internal_error("recording a request's error", internal)

    def _close(self, span: ActiveSpan, scope: Scope, state: _Exchange) -> None:
        try:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template:
                span.name = scope.get("root_path", "") + template
            if span.user_id is None:
                late = identify(self.options.late_identity, scope, {})
                span.set_identity(late.user_id, late.org_id, late.session_id)
            values: dict[str, Any] = {attributes.METHOD: scope.get("method", "WS")}
            client = scope.get("client")
            if client:
                values[attributes.CLIENT] = client[0]
            if scope["type"] == "http":
                values[attributes.STATUS_CODE] = state.status
                values[attributes.REQUEST_SIZE] = state.request_bytes
                values[attributes.RESPONSE_SIZE] = state.response_bytes
                if state.first_byte is not None:
                    values[attributes.TIME_TO_FIRST_BYTE] = state.first_byte
                if state.status >= SERVER_ERROR:
                    span.set_status(SpanStatus.ERROR)
            else:
                values["messages_in"] = state.messages_in
                values["messages_out"] = state.messages_out
            if span.attributes:
                span.attributes.update(values)
            else:
                span.attributes = values
            span.end()
        except Exception as error:
            self.recorder.report_internal_error("finishing a request span", error)


class _Exchange:
    __slots__ = (
        "finished",
        "first_byte",
        "messages_in",
        "messages_out",
        "request_bytes",
        "response_bytes",
        "status",
    )

    def __init__(self) -> None:
        self.status = 0
        self.first_byte: float | None = None
        self.request_bytes = 0
        self.response_bytes = 0
        self.messages_in = 0
        self.messages_out = 0
        self.finished = False
