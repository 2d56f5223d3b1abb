"""The request middleware's shortcuts give the same spans as the long way round.

The middleware skips work a request is known not to need (extractors with none of their headers
present, body counting where HTTP/1.x framing says there is no body, the late identity pass
where the app stored no state). These call it directly, with no server, on the requests for which
the shortcuts must not be taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest

from watchkeeper.config import load_settings
from watchkeeper.instrumentation.asgi import WatchkeeperMiddleware
from watchkeeper.instrumentation.identity import (
    NOBODY,
    FromCallable,
    FromHeaders,
    FromJwtClaims,
    FromRequestState,
    Headers,
    Identity,
    headers_read,
    only_state_read,
)
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]


@pytest.fixture
def recorded() -> Iterator[tuple[Recorder, MemorySink]]:
    sink = MemorySink()
    recorder = Recorder(
        load_settings(flush_interval=0.02, raise_internal_errors=True), sink=sink
    ).start()
    try:
        yield recorder, sink
    finally:
        recorder.stop()


def http_scope(headers: Sequence[tuple[bytes, bytes]] = (), http_version: str = "1.1") -> Scope:
    return {
        "type": "http",
        "http_version": http_version,
        "method": "POST",
        "path": "/upload",
        "root_path": "",
        "headers": list(headers),
        "client": ("10.0.0.7", 4321),
    }


def run(app: Any, scope: Scope, chunks: Sequence[bytes] = (b"",)) -> list[Message]:
    """Call ``app`` as a server would, with a body in ``chunks``; what it sent back."""
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


async def read_all_then_answer(scope: Scope, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def request_span(recorder: Recorder, sink: MemorySink) -> Span:
    recorder.flush()
    (span,) = sink.spans(kind=SpanKind.REQUEST)
    return span


def test_only_watchkeepers_header_extractors_are_known_to_read_only_headers() -> None:
    class MyHeaders(FromHeaders):  # may read anything: a subclass is not known
        pass

    assert headers_read((FromHeaders(user="X-Member"), FromJwtClaims())) == {
        b"x-member",
        b"x-org-id",
        b"x-session-id",
        b"authorization",
    }
    assert headers_read(()) == frozenset()
    assert headers_read((FromHeaders(), FromCallable(org=lambda scope: None))) is None
    assert headers_read((MyHeaders(),)) is None
    assert only_state_read((FromRequestState(),))
    assert not only_state_read((FromRequestState(), FromCallable(user=lambda scope: None)))


@pytest.mark.parametrize(
    ("headers", "http_version"),
    [
        ([(b"transfer-encoding", b"chunked")], "1.1"),  # HTTP/1.1 streaming upload
        ([], "2"),  # HTTP/2 frames bodies itself: no header needed
        ([(b"content-length", b"five")], "1.1"),  # unusable: counted instead
    ],
)
def test_bodies_of_undeclared_size_are_counted(
    recorded: tuple[Recorder, MemorySink], headers: list[tuple[bytes, bytes]], http_version: str
) -> None:
    recorder, sink = recorded
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, RequestOptions())
    run(middleware, http_scope(headers, http_version), chunks=(b"ab", b"cde"))
    span = request_span(recorder, sink)
    assert span.attributes is not None
    assert span.attributes["request_size"] == 5
    assert span.attributes["response_size"] == 2
    assert span.attributes["client"] == "10.0.0.7"


def test_an_http1_request_without_framing_headers_has_no_body(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, sink = recorded
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, RequestOptions())
    run(middleware, http_scope([(b"host", b"example.com")]))
    attributes = request_span(recorder, sink).attributes
    assert attributes is not None
    assert attributes["request_size"] == 0


def test_other_extractors_see_every_request_with_all_its_headers(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, sink = recorded
    seen: list[dict[bytes, bytes]] = []

    class FromHost:
        def extract(self, scope: MutableMapping[str, Any], headers: Headers) -> Identity:
            seen.append(dict(headers))
            return Identity(org_id=headers[b"host"].decode())

    options = RequestOptions(identity=(FromHeaders(), FromHost()))
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, options)
    run(middleware, http_scope([(b"host", b"acme.example"), (b"accept", b"*/*")]))
    assert seen == [{b"host": b"acme.example", b"accept": b"*/*"}]
    assert request_span(recorder, sink).org_id == "acme.example"


def test_identity_headers_are_read_and_other_headers_do_not_count_as_identity(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, sink = recorded
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, RequestOptions())
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    run(middleware, http_scope([(b"traceparent", traceparent), (b"content-length", b"0")]))
    run(middleware, http_scope([(b"x-user-id", b"first"), (b"x-user-id", b"u-7")]))
    recorder.flush()
    anonymous, known = sink.spans(kind=SpanKind.REQUEST)
    assert (anonymous.user_id, anonymous.org_id, anonymous.session_id) == (None, None, None)
    assert f"{anonymous.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert known.user_id == "u-7"  # the last of a repeated header, as dict() keeps it


def test_late_extractors_other_than_state_run_without_state(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, sink = recorded
    options = RequestOptions(late_identity=(FromCallable(session=lambda scope: "late-session"),))
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, options)
    run(middleware, http_scope())
    assert request_span(recorder, sink).session_id == "late-session"


def test_state_without_identity_leaves_the_span_unlabelled(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, sink = recorded
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, RequestOptions())
    scope = http_scope()
    scope["state"] = {"db_pool": object()}  # what a lifespan may store for every request
    run(middleware, scope)
    span = request_span(recorder, sink)
    assert (span.user_id, span.org_id, span.session_id) == (None, None, None)
    assert FromRequestState().extract(scope, {}) is NOBODY


def test_the_apps_response_headers_are_not_changed(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, _ = recorded
    shared = [(b"content-type", b"text/plain")]  # as a reused Response object would send

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b"hi"})

    middleware = WatchkeeperMiddleware(app, recorder, RequestOptions())
    for _ in range(2):
        start, _body = run(middleware, http_scope())
        names = [name for name, _value in start["headers"]]
        assert names == [b"content-type", b"x-trace-id"]
    assert shared == [(b"content-type", b"text/plain")]


def test_a_trace_id_of_a_hand_made_parent_is_returned_as_it_is(
    recorded: tuple[Recorder, MemorySink],
) -> None:
    recorder, _ = recorded
    middleware = WatchkeeperMiddleware(read_all_then_answer, recorder, RequestOptions())
    for trace_id in (0x0AF7651916CD43DD8448EB211C80319C, 7, 2**130 + 5):
        with recorder.span("outer", trace_id=trace_id):  # asyncio.run() copies this context
            start, _body = run(middleware, http_scope())
        assert dict(start["headers"])[b"x-trace-id"] == b"%032x" % trace_id


def test_a_malformed_response_message_is_the_servers_to_reject() -> None:
    recorder = Recorder(load_settings(raise_internal_errors=False), sink=MemorySink())

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": "200 OK", "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    middleware = WatchkeeperMiddleware(app, recorder, RequestOptions())
    start, body = run(middleware, http_scope())
    assert start["status"] == "200 OK"  # passed on as it came, for the server to refuse
    assert body["body"] == b"hi"
    assert recorder.stats().internal_errors == 1


@pytest.mark.parametrize(("method", "status"), [("GET", 204), ("GET", 304), ("HEAD", 200)])
def test_a_response_without_a_body_is_recorded_before_its_headers_go_out(
    recorded: tuple[Recorder, MemorySink], method: str, status: int
) -> None:
    recorder, _ = recorded
    submitted_when_headers_went_out: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def server_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            # The headers complete this response: a client may already have all of it.
            submitted_when_headers_went_out.append(recorder.stats().recorded)

    middleware = WatchkeeperMiddleware(app, recorder, RequestOptions())
    scope = {**http_scope(), "method": method}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(middleware(scope, receive, server_send))
    assert submitted_when_headers_went_out == [1]
    assert recorder.flush()
    (span,) = recorded[1].spans(kind=SpanKind.REQUEST)
    assert span.attributes is not None
    assert (span.attributes["status_code"], span.attributes["response_size"]) == (status, 0)


def test_identity_headers_are_read_as_utf8_when_they_are_utf8() -> None:
    extractor = FromHeaders()
    utf8 = extractor.extract({}, {b"x-user-id": "h\u00e9llo \u4e16".encode()})
    assert utf8.user_id == "h\u00e9llo \u4e16"  # not hÃ©llo
    latin1 = extractor.extract({}, {b"x-user-id": b"caf\xe9"})  # not UTF-8: byte for byte
    assert latin1.user_id == "caf\u00e9"
    assert extractor.extract({}, {b"x-user-id": b"plain"}).user_id == "plain"
