"""One span per HTTP request or WebSocket connection, as a pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so streaming responses pass through untouched and are timed
to their last byte. The span is named after the matched route template (see :mod:`.routes`),
so ``/api/users/42`` and ``/api/users/43`` are one name; unmatched paths all share
:data:`~watchkeeper.recording.attributes.UNMATCHED_ROUTE`. Exceptions are recorded and
re-raised as the same object. Recording failures are contained and never reach the app.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from watchkeeper.instrumentation.identity import NOBODY, IdentityExtractor, identify
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.instrumentation.routes import RouteNames
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
MESSAGES_IN = "messages_in"
MESSAGES_OUT = "messages_out"


class WatchkeeperMiddleware:
    def __init__(self, app: ASGIApp, recorder: Recorder, options: RequestOptions) -> None:
        self.app = app
        self.recorder = recorder
        self.options = options
        self._trace_header = options.trace_header.lower().encode("latin-1")
        self._excluded = tuple(prefix.rstrip("/") for prefix in options.exclude_paths if prefix)
        self._route_names = RouteNames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (
            kind not in ("http", "websocket")
            or not self.recorder.enabled
            or self._is_excluded(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        opened = self._open(scope, SpanKind.REQUEST if kind == "http" else SpanKind.WEBSOCKET)
        if opened is None:
            await self.app(scope, receive, send)
        elif kind == "http":
            await self._http(opened[0], opened[1], scope, receive, send)
        else:
            await self._websocket(opened[0], scope, receive, send)

    def _is_excluded(self, path: str) -> bool:
        if not path.startswith(self._excluded):
            return False
        # Whole path segments only: excluding /health must not hide /healthcare.
        return any(
            path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", "/")
            for prefix in self._excluded
        )

    def _open(self, scope: Scope, kind: SpanKind) -> tuple[ActiveSpan, dict[bytes, bytes]] | None:
        try:
            headers = dict(scope["headers"])
            trace_id, parent_id = parse_traceparent(headers.get(b"traceparent"))
            span = self.recorder.span(attributes.UNMATCHED_ROUTE, kind, None, trace_id, parent_id)
        except Exception as error:
            self.recorder.report_internal_error("starting a request span", error)
            return None
        self._identify(span, self.options.identity, scope, headers)
        return span.__enter__(), headers

    def _identify(
        self,
        span: ActiveSpan,
        extractors: tuple[IdentityExtractor, ...],
        scope: Scope,
        headers: dict[bytes, bytes],
    ) -> None:
        try:
            found = identify(extractors, scope, headers)
            if found is not NOBODY:
                span.set_identity(found.user_id, found.org_id, found.session_id)
        except Exception as error:
            # Possibly the app's own extractor: the request is still recorded, only unlabelled.
            self.recorder.report_internal_error("reading who a request is for", error)

    async def _http(
        self,
        span: ActiveSpan,
        headers: dict[bytes, bytes],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        state = _Exchange(scope.get("root_path", ""))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            # Known without reading the body, so also when the endpoint never reads it.
            state.request_bytes = int(declared)
            app_receive = receive
        else:
            server_receive = receive

            async def app_receive() -> Message:
                message = await server_receive()
                state.request_bytes += len(message.get("body", b""))
                return message

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status = message["status"]
                state.first_byte = span.elapsed()
                message["headers"] = [
                    *message.get("headers", ()),
                    (self._trace_header, b"%032x" % span.trace_id),
                ]
                if _without_body(state.status, scope):
                    # The headers are the whole response: the client may have it before any
                    # (empty) body message, so the span is closed now, for the same promise.
                    state.finished = True
                    self._close(span, scope, state)
            elif message["type"] == "http.response.body" and not state.finished:
                state.response_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # Timed to the last byte the app produced: a stream ends here, not when the
                    # endpoint returned its response object. Closed before the server sends it,
                    # so the span is recorded before the client can have the whole response.
                    state.finished = True
                    self._close(span, scope, state)
            await send(message)

        try:
            await self.app(scope, app_receive, send_timed)
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
        state = _Exchange(scope.get("root_path", ""))

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
            span.name = self._route_names.name(scope, state.root_path)
            if span.user_id is None or span.org_id is None or span.session_id is None:
                self._identify(span, self.options.late_identity, scope, {})
            if scope["type"] == "http":
                values: dict[str, Any] = {
                    attributes.METHOD: scope.get("method"),
                    attributes.STATUS_CODE: state.status,
                    attributes.REQUEST_SIZE: state.request_bytes,
                    attributes.RESPONSE_SIZE: state.response_bytes,
                }
                if state.first_byte is not None:
                    values[attributes.TIME_TO_FIRST_BYTE] = state.first_byte
                if state.status >= SERVER_ERROR:
                    span.status = SpanStatus.ERROR
            else:
                values = {
                    attributes.METHOD: "WS",
                    MESSAGES_IN: state.messages_in,
                    MESSAGES_OUT: state.messages_out,
                }
            client = scope.get("client")
            if client:
                values[attributes.CLIENT] = client[0]
            if span.attributes:
                span.attributes.update(values)
            else:
                span.attributes = values
            span.end()
        except Exception as error:
            self.recorder.report_internal_error("finishing a request span", error)


def _without_body(status: int, scope: Scope) -> bool:
    """A response HTTP forbids a body for (RFC 9110): 1xx, 204, 304, and any answer to HEAD."""
    return status < 200 or status in (204, 304) or scope.get("method") == "HEAD"


class _Exchange:
    """What one request or connection has done so far; read when its span closes."""

    __slots__ = (
        "finished",
        "first_byte",
        "messages_in",
        "messages_out",
        "request_bytes",
        "response_bytes",
        "root_path",
        "status",
    )

    def __init__(self, root_path: str) -> None:
        self.root_path = root_path
        self.status = 0
        self.first_byte: float | None = None
        self.request_bytes = 0
        self.response_bytes = 0
        self.messages_in = 0
        self.messages_out = 0
        self.finished = False
