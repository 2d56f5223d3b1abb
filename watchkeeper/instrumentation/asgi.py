"""One span per HTTP request or WebSocket connection, as a pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) so streaming responses pass through untouched and are timed
to their last byte. The span is named after the matched route template (see :mod:`.routes`),
so ``GET /api/users/42`` and ``GET /api/users/43`` are one name, ``GET /api/users/{id}``;
unmatched paths all share
:data:`~watchkeeper.recording.attributes.UNMATCHED_REQUEST`. Exceptions are recorded and
re-raised as the same object. Recording failures are contained and never reach the app.

This runs on every request, and a hello-world endpoint's own work is only some ten times what
it costs, so it makes as few calls and objects per request as it can: whatever depends only on
the options is worked out once, in ``__init__``, and identity extractors are skipped for
requests they are known to find nobody in.
"""

from __future__ import annotations

import time
import traceback
from asyncio import CancelledError
from binascii import hexlify
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from watchkeeper.instrumentation.guest import Guest
from watchkeeper.instrumentation.identity import (
    NOBODY,
    IdentityExtractor,
    headers_read,
    identify,
    only_state_read,
)
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.instrumentation.routes import RouteNames
from watchkeeper.instrumentation.traceparent import parse_traceparent
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.recording.attributes import (
    CLIENT,
    METHOD,
    REQUEST_SIZE,
    RESPONSE_SIZE,
    ROUTE,
    STACK,
    STATUS_CODE,
    TIME_TO_FIRST_BYTE,
    UNMATCHED_REQUEST,
    UNMATCHED_ROUTE,
)
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = dict[bytes, bytes]

STACK_LIMIT = 8_000
SERVER_ERROR = 500
CLIENT_CLOSED = 499
MESSAGES_IN = "messages_in"
MESSAGES_OUT = "messages_out"

TRACEPARENT = b"traceparent"
CONTENT_LENGTH = b"content-length"
TRANSFER_ENCODING = b"transfer-encoding"
# HTTP/1.x frames a request body with one of these two headers, so without them there is none.
# HTTP/2 and later frame it themselves: there a body may come without either.
FRAMED_BY_HEADERS = ("1.1", "1.0")

# Enum members as module constants: reading SpanKind.REQUEST costs ten times as much.
REQUEST = SpanKind.REQUEST
WEBSOCKET = SpanKind.WEBSOCKET
ERROR = SpanStatus.ERROR

_perf_counter = time.perf_counter


class WatchkeeperMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        recorder: Recorder,
        options: RequestOptions,
        guest: Guest | None = None,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.options = options
        self._guest = guest
        self._guest_started = guest is None
        # Every path Watchkeeper might serve, for one C-level startswith on each request.
        self._guest_prefixes: tuple[str, ...] = (*guest.prefixes,) if guest is not None else ()
        self._trace_header = options.trace_header.lower().encode("latin-1")
        self._excluded = tuple(prefix.rstrip("/") for prefix in options.exclude_paths if prefix)
        self._route_names = RouteNames()
        self._identity = options.identity
        self._late_identity = options.late_identity
        # With only header extractors (the default), a request with none of their headers is
        # nobody's: then just the few headers read here are picked out of the request's, and
        # the extractors are not called. Other extractors get all headers, every request.
        self._identity_headers = headers_read(options.identity)
        self._wanted = (
            None
            if self._identity_headers is None
            else self._identity_headers | {TRACEPARENT, CONTENT_LENGTH, TRANSFER_ENCODING}
        )
        # Likewise the default late extractor finds nobody where the app stored no state.
        self._late_needs_state = only_state_read(options.late_identity)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if not self._guest_started:
            await self._start_guest(kind)
        if kind == "http":
            if scope["path"].startswith(self._guest_prefixes) and self._serve_guest(scope):
                await self._guest_app(scope, receive, send)
                return
            opened = self._open(scope, REQUEST)
            if opened is not None:
                span, headers = opened
                await self._http(span, headers, scope, receive, send)
                return
        elif kind == "websocket":
            if scope["path"].startswith(self._guest_prefixes) and self._serve_guest(scope):
                await self._guest_app(scope, receive, send)
                return
            opened = self._open(scope, WEBSOCKET)
            if opened is not None:
                await self._websocket(opened[0], scope, receive, send)
                return
        elif kind == "lifespan" and self._guest is not None:
            await self._lifespan(self._guest, scope, receive, send)
            return
        await self.app(scope, receive, send)

    # -- Watchkeeper as a guest of the host app ---------------------------------------------

    def _serve_guest(self, scope: Scope) -> bool:
        guest = self._guest
        return guest is not None and guest.serves(scope["path"])

    async def _guest_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        guest = self._guest
        if guest is not None:
            await guest.app(scope, receive, send)

    async def _start_guest(self, kind: str) -> None:
        """Without a lifespan (a server run with it off, a mounted app), start on first use."""
        self._guest_started = True
        guest = self._guest
        if kind != "lifespan" and guest is not None:
            try:
                await guest.start()
                guest.host_started()
            except Exception as error:
                self.recorder.report_internal_error("starting Watchkeeper", error)
            self._guest_prefixes = guest.prefixes

    async def _lifespan(self, guest: Guest, scope: Scope, receive: Receive, send: Send) -> None:
        """Start before the host's start-up; stop after its shutdown, before the server exits."""

        async def receive_starting() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await guest.start()
                except Exception as error:
                    self.recorder.report_internal_error("starting Watchkeeper", error)
                self._guest_prefixes = guest.prefixes
            return message

        async def send_stopping(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    guest.host_started()
                except Exception as error:
                    self.recorder.report_internal_error("after the app's start-up", error)
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") or (
                message["type"] == "lifespan.startup.failed"
            ):
                try:
                    await guest.stop()
                except Exception as error:
                    self.recorder.report_internal_error("stopping Watchkeeper", error)
            await send(message)

        await self.app(scope, receive_starting, send_stopping)

    def _is_excluded(self, path: str) -> bool:
        # Whole path segments only: excluding /health must not hide /healthcare.
        return any(
            path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", "/")
            for prefix in self._excluded
        )

    def _open(self, scope: Scope, kind: SpanKind) -> tuple[ActiveSpan, Headers] | None:
        """The request's span, entered, and the headers read here; ``None``: not recorded."""
        path = scope["path"]
        # startswith() with the whole tuple first: one C call clears almost every request.
        if not self.recorder.enabled or (
            path.startswith(self._excluded) and self._is_excluded(path)
        ):
            return None
        try:
            wanted = self._wanted
            if wanted is None:
                headers = dict(scope["headers"])
            else:
                # One pass in Python, keeping the last of a repeated header as dict() does, is
                # cheaper than building the whole dict in C and then looking names up in it.
                headers = {}
                for name, value in scope["headers"]:
                    if name in wanted:
                        headers[name] = value
            traceparent = headers.get(TRACEPARENT)
            if traceparent is None:
                span = self.recorder.span(UNMATCHED_REQUEST, kind)
            else:
                trace_id, parent_id = parse_traceparent(traceparent)
                span = self.recorder.span(UNMATCHED_REQUEST, kind, None, trace_id, parent_id)
        except Exception as error:
            self.recorder.report_internal_error("starting a request span", error)
            return None
        known = self._identity_headers
        if known is None or (headers and not known.isdisjoint(headers)):
            self._identify(span, self._identity, scope, headers)
        return span.__enter__(), headers

    def _identify(
        self,
        span: ActiveSpan,
        extractors: tuple[IdentityExtractor, ...],
        scope: Scope,
        headers: Mapping[bytes, bytes],
    ) -> None:
        try:
            found = identify(extractors, scope, headers)
            if found is not NOBODY:
                span.set_identity(found.user_id, found.org_id, found.session_id)
        except Exception as error:
            # Possibly the app's own extractor: the request is still recorded, only unlabelled.
            self.recorder.report_internal_error("reading who a request is for", error)

    async def _http(
        self, span: ActiveSpan, headers: Headers, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = _perf_counter()
        root_path = scope.get("root_path", "")
        # The span's attributes double as the request's running state: nothing to copy at the end.
        values: dict[str, Any] = {
            METHOD: scope.get("method"),
            STATUS_CODE: 0,
            REQUEST_SIZE: 0,
            RESPONSE_SIZE: 0,
        }
        declared = headers.get(CONTENT_LENGTH)
        if declared is not None and declared.isdigit():
            # Known without reading the body, so also when the endpoint never reads it.
            values[REQUEST_SIZE] = int(declared)
        elif (
            declared is not None
            or TRANSFER_ENCODING in headers
            or scope.get("http_version") not in FRAMED_BY_HEADERS
        ):
            # A body of unknown size may come: counted as the app reads it. Not for most requests
            # (an HTTP/1.x GET, with neither header, has no body), which so need no wrapper.
            receive = _counting_body(receive, values)
        finished = False

        # The one function made per request (but for body counting). Not a coroutine: it hands
        # back the server's own awaitable, so a message sent costs no coroutine of ours.
        def send_timed(message: Message) -> Awaitable[None]:
            nonlocal finished
            # try costs nothing until something raises (3.11): a malformed message is the
            # server's to reject, not a reason for recording to raise into the app.
            try:
                kind = message["type"]
                if kind == "http.response.body":
                    if finished:  # a response without a body, closed at its start
                        return send(message)
                    values[RESPONSE_SIZE] += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        # Timed to the last byte the app produced: a stream ends here, not when the
                        # endpoint returned its response object. Closed before the server sends it,
                        # so the span is recorded before the client can have the whole response.
                        finished = True
                        self._close(span, scope, root_path, values)
                elif kind == "http.response.start":
                    values[TIME_TO_FIRST_BYTE] = _perf_counter() - started
                    status = values[STATUS_CODE] = message["status"]
                    if status >= SERVER_ERROR:
                        span.status = ERROR
                    trace_id = span.trace_id
                    try:
                        # Two C calls: cheaper than b"%032x" formatting of a 128-bit int.
                        hex_id = hexlify(trace_id.to_bytes(16))
                    except OverflowError:  # not a 128-bit id (a hand-made parent's): as it is
                        hex_id = b"%032x" % trace_id
                    # A new list: the app's may be shared between responses (a reused Response).
                    message["headers"] = [*message.get("headers", ()), (self._trace_header, hex_id)]
                    if _without_body(status, values[METHOD]):
                        # The headers are the whole response: the client may have it before any
                        # (empty) body message, so the span is closed now, for the same promise.
                        finished = True
                        self._close(span, scope, root_path, values)
            except Exception as error:
                self.recorder.report_internal_error("timing a response", error)
            return send(message)

        try:
            await self.app(scope, receive, send_timed)
        except BaseException as error:
            if not finished:
                # A request its client left is cancelled (nginx's 499), not the app's failure.
                failed = CLIENT_CLOSED if isinstance(error, CancelledError) else SERVER_ERROR
                values[STATUS_CODE] = values[STATUS_CODE] or failed
                self._fail(span, error)
                self._close(span, scope, root_path, values)
            raise
        if not finished:  # the app returned without a final body: close what we have
            self._close(span, scope, root_path, values)

    async def _websocket(
        self, span: ActiveSpan, scope: Scope, receive: Receive, send: Send
    ) -> None:
        root_path = scope.get("root_path", "")
        messages_in = messages_out = 0

        async def receive_counting() -> Message:
            nonlocal messages_in
            message = await receive()
            if message["type"] == "websocket.receive":
                messages_in += 1
            return message

        async def send_counting(message: Message) -> None:
            nonlocal messages_out
            if message["type"] == "websocket.send":
                messages_out += 1
            await send(message)

        try:
            await self.app(scope, receive_counting, send_counting)
        except BaseException as error:
            self._fail(span, error)
            raise
        finally:
            values = {
                METHOD: "WS",
                MESSAGES_IN: messages_in,
                MESSAGES_OUT: messages_out,
            }
            self._close(span, scope, root_path, values)

    def _fail(self, span: ActiveSpan, error: BaseException) -> None:
        try:
            span.record_error(error)
            stack = "".join(traceback.format_exception(error))
            span.set_attribute(STACK, stack[-STACK_LIMIT:])
        except Exception as internal:
            self.recorder.report_internal_error("recording a request's error", internal)

    def _close(
        self, span: ActiveSpan, scope: Scope, root_path: str, values: dict[str, Any]
    ) -> None:
        try:
            route = values[ROUTE] = self._route_names.name(scope, root_path)
            # OpenTelemetry's HTTP span name: GET and PUT of one path are two operations.
            span.name = (
                UNMATCHED_REQUEST if route == UNMATCHED_ROUTE else f"{values[METHOD]} {route}"
            )
            late = self._late_identity
            if (
                late
                and (scope.get("state") or not self._late_needs_state)
                and (span.user_id is None or span.org_id is None or span.session_id is None)
            ):
                self._identify(span, late, scope, {})
            client = scope.get("client")
            if client:
                values[CLIENT] = client[0]
            if span.attributes:
                span.attributes.update(values)
            else:
                span.attributes = values
            # __exit__ rather than end(), which only calls it: one call less, every request.
            span.__exit__(None, None, None)
        except Exception as error:
            self.recorder.report_internal_error("finishing a request span", error)


def _without_body(status: int, method: object) -> bool:
    """A response HTTP forbids a body for (RFC 9110): 1xx, 204, 304, and any answer to HEAD."""
    return status < 200 or status in (204, 304) or method == "HEAD"


def _counting_body(receive: Receive, values: dict[str, Any]) -> Receive:
    """``receive``, adding the size of each body chunk the app reads to the request's size."""

    async def receive_counting() -> Message:
        message = await receive()
        values[REQUEST_SIZE] += len(message.get("body", b""))
        return message

    return receive_counting
