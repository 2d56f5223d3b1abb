"""Watchkeeper in a host app shaped like the full-stack FastAPI template: a guest, not a tenant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import watchkeeper
from tests.support.host_app import API_V1, build_host_app
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.recording.default import set_recorder
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage.factory import open_store

KEY = "guest-test-key-0123456789abcdef"
VOLATILE_HEADERS = {"x-trace-id", "date"}

Exchange = tuple[str, int, dict[str, str], bytes]


@pytest.fixture(autouse=True)
def _no_process_recorder() -> Iterator[None]:
    yield
    set_recorder(None)


def _settings(tmp_path: Path, keys: bool) -> Settings:
    return load_settings(
        sqlite_path=tmp_path / "guest.db",
        api_keys=[KEY] if keys else [],
        raise_internal_errors=True,
    )


def _visit(client: TestClient) -> list[Exchange]:
    """What a user of the host app does, answer by answer."""
    answers = []

    def keep(label: str, response: Any) -> None:
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() not in VOLATILE_HEADERS
        }
        answers.append((label, response.status_code, headers, response.content))

    token = client.post(
        f"{API_V1}/login/access-token",
        data={"username": "alice@example.com", "password": "alice-password"},
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    keep("root", client.get("/"))
    keep("openapi", client.get(f"{API_V1}/openapi.json"))
    keep("docs", client.get("/docs"))
    keep("bad login", client.post(f"{API_V1}/login/access-token", data={"username": "x"}))
    keep("list", client.get(f"{API_V1}/items/", headers=auth))
    keep("unauthenticated", client.get(f"{API_V1}/items/"))
    keep("bad token", client.get(f"{API_V1}/items/", headers={"Authorization": "Bearer nope"}))
    keep("missing item", client.get(f"{API_V1}/items/99", headers=auth))
    keep("invalid item", client.post(f"{API_V1}/items/", json={"title": ""}, headers=auth))
    keep("create", client.post(f"{API_V1}/items/", json={"title": "new"}, headers=auth))
    keep("update", client.put(f"{API_V1}/items/1", json={"title": "renamed"}, headers=auth))
    keep("read", client.get(f"{API_V1}/items/1", headers=auth))
    keep("delete", client.delete(f"{API_V1}/items/2", headers=auth))
    keep("stream", client.get(f"{API_V1}/utils/stream"))
    keep("health check", client.get(f"{API_V1}/utils/health-check/"))
    keep("unknown", client.get("/no/such/page"))
    keep("wrong method", client.patch("/"))
    keep(
        "preflight",
        client.options(
            f"{API_V1}/items/",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
            },
        ),
    )
    with client.websocket_connect(f"{API_V1}/utils/ws/echo") as websocket:
        websocket.send_text("hi")
        answers.append(("websocket", 101, {}, websocket.receive_text().encode()))
    return answers


def _run(app: FastAPI) -> list[Exchange]:
    with TestClient(app) as client:
        return _visit(client)


@pytest.mark.parametrize("keys", [True, False], ids=["keys set", "no keys"])
def test_the_host_answers_byte_for_byte_as_without_watchkeeper(tmp_path: Path, keys: bool) -> None:
    bare_log: list[str] = []
    bare = _run(build_host_app(bare_log))
    hosted_log: list[str] = []
    app = build_host_app(hosted_log)
    handlers_before = dict(app.exception_handlers)
    routes_before = list(app.routes)
    openapi_before = app.openapi()
    app.openapi_schema = None
    watchkeeper.instrument(app, _settings(tmp_path, keys))
    hosted = _run(app)
    for (label, *expected), (_, *actual) in zip(bare, hosted, strict=True):
        assert actual == expected, f"the host's {label!r} answer changed"
    assert hosted_log == bare_log == ["indexed new"]
    # Nothing of the host changed but its one added middleware.
    assert app.exception_handlers == handlers_before
    assert list(app.routes) == routes_before
    assert app.openapi() == openapi_before
    assert [entry.cls.__name__ for entry in app.user_middleware] == [
        "WatchkeeperMiddleware",
        "CORSMiddleware",
    ]


def test_every_request_is_recorded_under_its_method_and_full_route(tmp_path: Path) -> None:
    app = build_host_app()
    settings = _settings(tmp_path, keys=False)
    watchkeeper.instrument(app, settings)
    _run(app)  # leaving the client runs the lifespan's shutdown, which flushes
    store = open_store(settings)
    try:
        page = store.spans(TimeRange.last(timedelta(minutes=10)), Scope.everything(), limit=500)
    finally:
        store.close()
    names = {span.name for span in page.items if span.kind in ("request", "websocket")}
    assert names == {
        "GET /",
        "PATCH /",
        f"GET {API_V1}/openapi.json",
        "GET /docs",
        f"POST {API_V1}/login/access-token",
        f"GET {API_V1}/items/",
        f"POST {API_V1}/items/",
        f"GET {API_V1}/items/{{item_id}}",
        f"PUT {API_V1}/items/{{item_id}}",
        f"DELETE {API_V1}/items/{{item_id}}",
        f"GET {API_V1}/utils/stream",
        f"GET {API_V1}/utils/health-check/",
        f"WS {API_V1}/utils/ws/echo",
        # The unknown page, and the CORS preflight the host's middleware answers before routing.
        "unmatched route",
    }
    # The JWT's claims label the requests made with it.
    users = {span.user_id for span in page.items if span.name == f"GET {API_V1}/items/"}
    assert users == {"user-1", None}


def test_watchkeepers_own_endpoints_answer_beside_the_host(tmp_path: Path) -> None:
    app = build_host_app()
    watchkeeper.instrument(app, _settings(tmp_path, keys=True))
    bearer = {"Authorization": f"Bearer {KEY}"}
    with TestClient(app) as client:
        dashboard = client.get("/watchkeeper/")
        overview = client.get("/watchkeeper/api/v1/overview", headers=bearer)
        unauthorised = client.get("/watchkeeper/api/v1/overview")
        metrics = client.get("/metrics", headers=bearer)
        health = client.get("/health")
        own_schema = client.get("/watchkeeper/api/v1/openapi.json")
        host_schema = client.get(f"{API_V1}/openapi.json")
        bad_query = client.get("/watchkeeper/api/v1/spans?limit=-1", headers=bearer)
    assert dashboard.status_code == 200
    assert "Watchkeeper" in dashboard.text
    assert overview.status_code == 200
    assert unauthorised.status_code == 401
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text
    assert health.status_code == 200
    assert own_schema.status_code == 200
    assert "/watchkeeper/api/v1/overview" in own_schema.json()["paths"]
    assert not any(path.startswith("/watchkeeper") for path in host_schema.json()["paths"])
    # Watchkeeper's own error shape for its own API; the host's handlers never see it.
    assert bad_query.status_code == 422
    assert "error" in bad_query.json()


def test_a_route_of_the_host_keeps_its_path(tmp_path: Path) -> None:
    app = FastAPI()
    watchkeeper.instrument(app, _settings(tmp_path, keys=True))

    # Declared after instrument(), as apps often do: still the host's.
    @app.get("/health")
    def own_health() -> dict[str, str]:
        return {"owner": "host"}

    with TestClient(app) as client:
        host = client.get("/health")
        ours = client.get("/watchkeeper/health")
        ready = client.get("/readyz")
    assert host.json() == {"owner": "host"}
    assert ours.headers["content-type"].startswith("application/health+json")
    assert ready.status_code == 200


def test_watchkeeper_runs_around_the_hosts_lifespan(tmp_path: Path) -> None:
    seen: list[str] = []
    app = build_host_app()
    runtime = watchkeeper.instrument(app, _settings(tmp_path, keys=False))
    inner = app.router.lifespan_context

    from contextlib import asynccontextmanager  # noqa: PLC0415 - local to this shape

    @asynccontextmanager
    async def lifespan(application: Any) -> Any:
        seen.append(f"host start-up, recording {runtime.recorder.running}")
        async with inner(application) as state:
            yield state
        with watchkeeper.integration("shutdown-hook"):
            pass
        seen.append(f"host shutdown, recording {runtime.recorder.running}")

    app.router.lifespan_context = lifespan
    with TestClient(app):
        pass
    assert seen == ["host start-up, recording True", "host shutdown, recording True"]
    assert not runtime.recorder.running
    # What the host recorded in its own shutdown was flushed after it.
    assert runtime.recorder.stats().flushed >= 1


def test_components_cannot_be_added_once_serving(tmp_path: Path) -> None:
    runtime = Runtime(_settings(tmp_path, keys=False), serve=False)
    assert runtime.app.routes
    with pytest.raises(RuntimeError, match="add components before the app starts serving"):
        runtime.add(runtime.health)


def test_a_component_added_after_instrument_serves_and_runs(tmp_path: Path) -> None:
    from fastapi import APIRouter  # noqa: PLC0415 - local to this shape

    events: list[str] = []

    class Extra:
        name = "extra"

        def router(self) -> APIRouter:
            router = APIRouter()

            @router.get("/watchkeeper/extra")
            def extra() -> dict[str, bool]:
                return {"extra": True}

            return router

        async def start(self) -> None:
            events.append("start")

        async def stop(self) -> None:
            events.append("stop")

    app = build_host_app()
    runtime = watchkeeper.instrument(app, _settings(tmp_path, keys=False))
    runtime.add(Extra())  # later issues' components arrive this way
    with TestClient(app) as client:
        answer = client.get("/watchkeeper/extra")
    assert answer.json() == {"extra": True}
    assert events == ["start", "stop"]
