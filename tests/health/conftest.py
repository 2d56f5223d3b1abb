"""A real uvicorn server on 127.0.0.1 per test, plus a recorder writing to memory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import watchkeeper
from tests.support.server import LiveServer
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.model.ids import new_span_id, new_trace_id
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.runtime.runtime import DEFAULT_PREFIX, Runtime
from watchkeeper.testing import MemorySink

API_KEY = "health-test-key-0123456789"
WAIT_SECONDS = 10.0


@pytest.fixture(autouse=True)
def _no_process_recorder() -> Iterator[None]:
    """``instrument()`` makes its recorder the process's own: not beyond the test."""
    yield
    set_recorder(None)


def instrument(app: FastAPI, recorder: Recorder, prefix: str = DEFAULT_PREFIX) -> Runtime:
    """Watchkeeper in ``app`` as an app adds it, recording into ``recorder``.

    Outbound calls are not recorded: the test's own httpx client would count as an integration.
    """
    return watchkeeper.instrument(app, recorder=recorder, prefix=prefix, outbound=False)


def own_app(runtime: Runtime) -> FastAPI:
    """Watchkeeper's own application alone, ``runtime`` started and stopped by its server."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(lifespan=lifespan)
    app.mount("/", runtime.app)
    return app


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


KEYED = {"Authorization": f"Bearer {API_KEY}"}
"""Health documents with their figures need the key; without it they carry status only."""
