"""``watchkeeper.instrument(app)`` on a real server writing to a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import watchkeeper
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.model.query import Scope, SpanFilter, TimeRange
from watchkeeper.recording.default import set_recorder
from watchkeeper.storage.factory import open_store

KEY = "instrument-test-key-0123456789"


def test_two_lines_record_requests_and_flush_on_shutdown(tmp_path: Path) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("user startup")
        yield
        events.append("user shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/guidance")
    async def guidance() -> dict[str, str]:
        with watchkeeper.integration("openai", "chat") as call:
            call.usage(model="gpt-4o-mini", input_tokens=10, output_tokens=20, cost=0.001)
        return {"answer": "yes"}

    settings = load_settings(
        sqlite_path=tmp_path / "app.db",
        flush_interval=60,
        api_keys=[KEY],
        raise_internal_errors=True,
    )
    recorder = watchkeeper.instrument(app, settings).recorder
    try:
        server = LiveServer(app).start()
        with httpx.Client(base_url=server.url) as client:
            for _ in range(5):
                assert (
                    client.post("/api/guidance", headers={"X-Session-ID": "s-9"}).status_code == 200
                )
            health = client.get("/health/live")
            overview = client.get(
                "/watchkeeper/api/v1/overview", headers={"Authorization": f"Bearer {KEY}"}
            )
            page = client.get("/watchkeeper/")
        assert recorder.stats().flushed == 0  # flush_interval=60: nothing written before shutdown
        server.stop()
    finally:
        set_recorder(None)
    assert events == ["user startup", "user shutdown"]
    assert health.status_code == 200
    assert overview.status_code == 200
    assert "Watchkeeper" in page.text
    store = open_store(settings)
    try:
        window = TimeRange.last(timedelta(minutes=5))
        requests = store.spans(
            window, Scope.everything(), SpanFilter(name="POST /api/guidance")
        ).items
        calls = store.spans(window, Scope.everything(), SpanFilter(name="openai")).items
    finally:
        store.close()
    assert len(requests) == 5
    assert {span.session_id for span in requests} == {"s-9"}
    assert len(calls) == 5
    assert {call.parent_id for call in calls} == {span.span_id for span in requests}


def test_without_keys_only_health_is_served(tmp_path: Path) -> None:
    app = FastAPI()
    watchkeeper.instrument(app, load_settings(sqlite_path=tmp_path / "a.db"))
    try:
        with TestClient(app) as client:
            # The reason is a figure: shown with a key.
            ready = client.get("/health/ready", headers={"Authorization": f"Bearer {KEY}"})
            api = client.get("/watchkeeper/api/v1/overview")
            metrics = client.get("/metrics")
    finally:
        set_recorder(None)
    assert ready.status_code == 200
    assert ready.headers["content-type"].startswith("application/health+json")
    assert (api.status_code, metrics.status_code) == (404, 404)


def test_bad_input_is_explained() -> None:
    with pytest.raises(TypeError, match="needs a FastAPI application"):
        watchkeeper.instrument(object())  # type: ignore[arg-type]


def test_a_store_that_cannot_open_does_not_stop_the_app(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    runtime = watchkeeper.instrument(
        app, load_settings(sqlite_path=blocker / "app.db", api_keys=[KEY])
    )
    try:
        with TestClient(app) as client:
            assert client.get("/ping").json() == {"pong": True}
            wait_until(lambda: runtime.stores.last_error, what="the store's first failure")
            # The reason is a figure: shown with a key.
            ready = client.get("/health/ready", headers={"Authorization": f"Bearer {KEY}"})
    finally:
        set_recorder(None)
    # Watchkeeper's own trouble is a warning with advice, never the app's readiness failing.
    assert ready.status_code == 200
    store_check = ready.json()["checks"]["store:probe"][0]
    assert store_check["status"] == "warn"
    assert "check WATCHKEEPER_SQLITE_PATH" in store_check["output"]
    assert runtime.stores.last_error is not None
