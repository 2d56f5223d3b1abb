"""A real instrumented app served by uvicorn on 127.0.0.1 with a real SQLite file, taking OTLP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

import watchkeeper
from tests.otlp.served import API_KEY, INGEST_KEY, LIMIT, Served
from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.recording.default import set_recorder


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    settings = load_settings(
        sqlite_path=tmp_path / "otlp.db",
        api_keys=[API_KEY],
        ingest_keys=[INGEST_KEY],
        otlp_max_body_bytes=LIMIT,
        flush_interval=0.1,
        raise_internal_errors=True,
    )
    # Not outbound: the test's own httpx calls to the server must not be recorded as the app's.
    runtime = watchkeeper.instrument(app, settings, outbound=False)
    server = LiveServer(app).start()
    try:
        yield Served(server.url, settings, runtime)
    finally:
        server.stop()
        set_recorder(None)
