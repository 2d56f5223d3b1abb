"""A real uvicorn server on 127.0.0.1 per test, plus a recorder writing to memory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from watchkeeper.config import Settings, load_settings
from watchkeeper.recording.ids import new_span_id, new_trace_id
from watchkeeper.recording.model import Span, SpanKind, SpanStatus
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

API_KEY = "health-test-key-0123456789"
WAIT_SECONDS = 10.0


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_SECONDS)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the test server did not stop")


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], httpx.Client]]:
    """Start ``app`` on a free port; returns a client for it. Everything stops at teardown."""
    servers: list[LiveServer] = []
    clients: list[httpx.Client] = []

    def start(app: FastAPI) -> httpx.Client:
        server = LiveServer(app).start()
        servers.append(server)
        client = httpx.Client(base_url=server.url, timeout=WAIT_SECONDS)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "api_keys": [API_KEY],
            "sqlite_path": tmp_path / "watchkeeper.db",
            "system_sample_interval": 0.1,
            "service": "chat-api",
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def recorder(make_settings: Callable[..., Settings], sink: MemorySink) -> Iterator[Recorder]:
    with Recorder(make_settings(), sink=sink) as running:
        yield running


def spans(
    name: str,
    count: int,
    errors: int = 0,
    duration: float = 0.05,
    kind: SpanKind = SpanKind.INTEGRATION,
) -> list[Span]:
    """Finished spans that ended just now, the first ``errors`` of them failed."""
    start = time.time() - duration
    return [
        Span(
            kind,
            name,
            start,
            duration,
            new_trace_id(),
            new_span_id(),
            status=SpanStatus.ERROR if index < errors else SpanStatus.OK,
        )
        for index in range(count)
    ]


def poll(
    read: Callable[[], httpx.Response],
    until: Callable[[httpx.Response], bool],
    timeout: float = WAIT_SECONDS,
) -> httpx.Response:
    """Repeat ``read`` until ``until`` holds; fail with the last answer if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        response = read()
        if until(response):
            return response
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met in {timeout}s; last answer: {response.text}")
        time.sleep(0.05)
