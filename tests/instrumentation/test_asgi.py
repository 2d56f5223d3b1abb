"""The request middleware on a real uvicorn server, with a recorder writing to memory."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from websockets.sync.client import connect

from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.instrumentation.asgi import WatchkeeperMiddleware
from watchkeeper.instrumentation.identity import FromCallable, FromHeaders, FromJwtClaims
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.instrumentation.routes import RouteNames
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink


class Boom(RuntimeError):
    pass


def build_version_two() -> FastAPI:
    version_two = FastAPI()

    @version_two.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return version_two


def build_app(recorder: Recorder) -> FastAPI:
    app = FastAPI()

    @app.get("/api/users/{user_id}")
    def user(user_id: str) -> dict[str, str]:
        with recorder.span("database", SpanKind.INTEGRATION):
            pass
        return {"user": user_id}

    @app.get("/boom")
    def boom() -> None:
        raise Boom("the chart service exploded")

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                await asyncio.sleep(0.1)
                yield f"data: {index}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.get("/state")
    def state(request: Request) -> dict[str, bool]:
        request.state.user_id = "from-state"
        return {"ok": True}

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "pass"}

    @app.get("/healthcare")
    def healthcare() -> dict[str, str]:
        return {"status": "a route of the app, not a probe"}

    @app.post("/upload")
    def upload() -> Response:
        return Response(status_code=204)  # never reads the body it was sent

    app.mount("/v2", build_version_two())

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        for _ in range(2):
            await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    def tenant(scope: Any) -> str | None:
        return "from-callable" if scope["path"] == "/api/users/callable" else None

    options = RequestOptions(
        identity=(FromHeaders(), FromJwtClaims(), FromCallable(org=tenant)),
    )
    app.add_middleware(WatchkeeperMiddleware, recorder=recorder, options=options)
    return app


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, Recorder, MemorySink, str]]:
    sink = MemorySink()
    recorder = Recorder(
        load_settings(flush_interval=0.02, raise_internal_errors=True), sink=sink
    ).start()
    server = LiveServer(build_app(recorder)).start()
    client = httpx.Client(base_url=server.url, timeout=10)
    try:
        yield client, recorder, sink, server.url
    finally:
        client.close()
        server.stop()
        recorder.stop()


def requests_of(recorder: Recorder, sink: MemorySink) -> list[Span]:
    recorder.flush()
    return sink.spans(kind=SpanKind.REQUEST)


def test_spans_are_named_by_route_template(served: Any) -> None:
    client, recorder, sink, _ = served
    for user in ("42", "43"):
        assert client.get(f"/api/users/{user}").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    names = [span.name for span in requests_of(recorder, sink)]
    assert names == ["GET /api/users/{user_id}", "GET /api/users/{user_id}", "unmatched route"]
    first = requests_of(recorder, sink)[0]
    assert first.attributes is not None
    assert first.attributes["method"] == "GET"
    assert first.attributes["status_code"] == 200
    assert first.attributes["client"] == "127.0.0.1"
    assert first.attributes["response_size"] == len(b'{"user":"42"}')


def test_exceptions_are_recorded_and_the_server_answers_500(served: Any) -> None:
    client, recorder, sink, _ = served
    assert client.get("/boom").status_code == 500
    (span,) = requests_of(recorder, sink)
    assert span.status is SpanStatus.ERROR
    assert (span.error_type, span.error_message) == ("Boom", "the chart service exploded")
    assert "raise Boom" in span.attributes["stack"]
    assert span.attributes["status_code"] == 500


def test_the_same_exception_object_reaches_the_server() -> None:
    recorder = Recorder(load_settings(raise_internal_errors=True), sink=MemorySink())
    error = Boom("mine")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    middleware = WatchkeeperMiddleware(app, recorder, RequestOptions())
    scope = {"type": "http", "path": "/x", "method": "GET", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    with pytest.raises(Boom) as raised:
        asyncio.run(middleware(scope, receive, send))
    assert raised.value is error
    recorder.flush()
    assert recorder.stats().recorded == 1


def test_streaming_is_timed_to_the_last_byte(served: Any) -> None:
    client, recorder, sink, _ = served
    response = client.get("/stream")
    assert response.text.count("data:") == 3
    (span,) = requests_of(recorder, sink)
    assert span.duration >= 0.28
    assert span.attributes["ttfb"] < span.duration
    assert span.attributes["response_size"] == len(response.content)


def test_traceparent_is_continued_and_the_trace_id_returned(served: Any) -> None:
    client, recorder, sink, _ = served
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    continued = client.get("/api/users/1", headers={"traceparent": incoming})
    fresh = client.get("/api/users/2", headers={"traceparent": "00-garbage"})
    first, second = requests_of(recorder, sink)
    assert f"{first.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert first.parent_id == 0xB7AD6B7169203331
    assert continued.headers["x-trace-id"] == "0af7651916cd43dd8448eb211c80319c"
    assert second.parent_id == 0
    assert fresh.headers["x-trace-id"] == f"{second.trace_id:032x}"
    (child,) = [
        span for span in sink.spans(kind=SpanKind.INTEGRATION) if span.trace_id == first.trace_id
    ]
    assert child.parent_id == first.span_id


def jwt(claims: dict[str, str]) -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def test_identity_from_headers_jwt_state_and_a_callable(served: Any) -> None:
    client, recorder, sink, _ = served
    client.get(
        "/api/users/1", headers={"X-User-ID": "u-1", "X-Org-ID": "acme", "X-Session-ID": "s-1"}
    )
    client.get(
        "/api/users/2",
        headers={"Authorization": "Bearer " + jwt({"sub": "u-2", "org_id": "beta", "sid": "s-2"})},
    )
    client.get("/state")
    client.get("/api/users/callable")
    spans = requests_of(recorder, sink)
    identities = [(span.user_id, span.org_id, span.session_id) for span in spans]
    assert identities == [
        ("u-1", "acme", "s-1"),
        ("u-2", "beta", "s-2"),
        ("from-state", None, None),
        (None, "from-callable", None),
    ]
    children = sink.spans(kind=SpanKind.INTEGRATION)
    assert (children[0].user_id, children[0].session_id) == ("u-1", "s-1")


def test_mounted_apps_are_named_with_their_prefix(served: Any) -> None:
    client, recorder, sink, _ = served
    assert client.get("/v2/items/5").status_code == 200
    assert client.get("/v2/no/such/item").status_code == 404
    assert [span.name for span in requests_of(recorder, sink)] == [
        "GET /v2/items/{item_id}",
        "unmatched route",
    ]


def test_routes_are_resolved_when_routing_left_no_route_in_the_scope() -> None:
    app = build_app(Recorder(load_settings(raise_internal_errors=True), sink=MemorySink()))
    names = RouteNames(cache_size=2)

    def name(method: str, path: str) -> str:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        return names.name({**scope, "router": app.router}, "")

    assert name("GET", "/api/users/7") == "/api/users/{user_id}"
    assert name("GET", "/v2/items/3") == "/v2/items/{item_id}"
    assert name("DELETE", "/api/users/7") == "/api/users/{user_id}"  # answered 405
    assert name("GET", "/nothing/here") == "none"
    assert name("GET", "/api/users/8") == "/api/users/{user_id}"


def test_request_size_is_known_even_when_the_body_is_not_read(served: Any) -> None:
    client, recorder, sink, _ = served
    assert client.post("/upload", content=b"x" * 100).status_code == 204
    (span,) = requests_of(recorder, sink)
    assert span.attributes["request_size"] == 100


def test_excluded_paths_are_not_recorded_on_whole_segments_only(served: Any) -> None:
    client, recorder, sink, _ = served
    assert client.get("/health/live").status_code == 200
    assert client.get("/healthcare").status_code == 200
    assert [span.name for span in requests_of(recorder, sink)] == ["GET /healthcare"]


def test_websockets_are_recorded(served: Any) -> None:
    _, recorder, sink, url = served
    with connect(url.replace("http", "ws") + "/ws") as socket:
        for text in ("a", "b"):
            socket.send(text)
            assert socket.recv(timeout=5) == text
    deadline = time.monotonic() + 5
    while not sink.spans(kind=SpanKind.WEBSOCKET) and time.monotonic() < deadline:
        recorder.flush()
    (span,) = sink.spans(kind=SpanKind.WEBSOCKET)
    assert span.name == "WS /ws"
    assert (span.attributes["messages_in"], span.attributes["messages_out"]) == (2, 2)
