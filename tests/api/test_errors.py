"""Every failure of the API answers in its JSON envelope: bad input a 4xx, a store that is down a
503 with ``Retry-After``, anything unexpected a 500; never plain text, never a reset connection."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from tests.api.conftest import API_KEY, AUTH
from tests.support.server import LiveServer
from tests.support.stores import StoreTarget
from tests.support.tcp_proxy import TcpProxy
from watchkeeper.api.context import ApiContext
from watchkeeper.api.live import LiveHub
from watchkeeper.api.routes import live
from watchkeeper.config import Settings, load_settings
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage import migrate
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.factory import postgres_url as psycopg_url
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.sql_store import SqlStore

TEXT_FILTERS = [
    ("/api/v1/spans", "name"),
    ("/api/v1/spans", "user_id"),
    ("/api/v1/spans", "org_id"),
    ("/api/v1/spans", "session_id"),
    ("/api/v1/traces", "user_id"),
    ("/api/v1/traces", "session_id"),
    ("/api/v1/traces", "name"),
    ("/api/v1/sessions", "search"),
    ("/api/v1/validations", "target"),
    ("/api/v1/logs", "text"),
    ("/api/v1/series", "name"),
]
PATHS_WITH_TEXT = ["/api/v1/sessions/a%00b", "/api/v1/metrics/a%00b"]


def assert_envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == status
    assert error["message"]
    return error


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "sqlite":
        target = StoreTarget(f"sqlite:///{tmp_path / 'errors.db'}")
    else:
        base_url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        target = StoreTarget(psycopg_url(base_url).render_as_string(hide_password=False), schema)
    store = SqlStore(target.engine())
    migrate.upgrade(store.engine)
    settings = load_settings(sqlite_path=tmp_path / "unused.db", api_keys=[API_KEY])
    try:
        with TestClient(create_app(settings, store=store)) as client:
            yield client
    finally:
        store.close()


@pytest.mark.parametrize(("path", "parameter"), TEXT_FILTERS)
def test_a_nul_byte_in_a_text_filter_is_a_422(
    any_client: TestClient, path: str, parameter: str
) -> None:
    response = any_client.get(path, params={parameter: "a\x00b"}, headers=AUTH)
    error = assert_envelope(response, 422)
    assert parameter in json.dumps(error["details"])


@pytest.mark.parametrize("path", PATHS_WITH_TEXT)
def test_a_nul_byte_in_a_path_is_a_422(any_client: TestClient, path: str) -> None:
    assert_envelope(any_client.get(path, headers=AUTH), 422)


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        (path, cursor)
        for path in ("/api/v1/spans", "/api/v1/logs", "/api/v1/validations")
        for cursor in (
            cursor_of(f"1700000000.0/{2**63}"),
            cursor_of(f"1700000000.0/{-(2**63) - 1}"),
            cursor_of(f"1700000000.0/{10**40}"),
            cursor_of("1e400/1"),
        )
    ]
    # Sessions are paged by their text id: a NUL character is what no id holds.
    + [("/api/v1/sessions", cursor_of("1700000000.0/a\x00b"))],
)
def test_a_cursor_out_of_range_is_a_400(any_client: TestClient, path: str, cursor: str) -> None:
    error = assert_envelope(any_client.get(path, params={"cursor": cursor}, headers=AUTH), 400)
    assert "cursor" in error["message"]


# -- the store is down ----------------------------------------------------------------------


@pytest.fixture
def proxied_settings(
    postgres_url: str, postgres_schema: str
) -> Iterator[tuple[Settings, TcpProxy]]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        settings = load_settings(
            database_url=proxied.render_as_string(hide_password=False),
            database_schema=postgres_schema,
            api_keys=[API_KEY],
        )
        yield settings, proxy


API_ROUTES = [
    "/api/v1/overview",
    "/api/v1/routes",
    "/api/v1/series",
    "/api/v1/integrations",
    "/api/v1/spans",
    "/api/v1/traces",
    f"/api/v1/traces/{'0' * 31}1",
    "/api/v1/sessions",
    "/api/v1/sessions/s-1",
    "/api/v1/errors",
    "/api/v1/validations",
    "/api/v1/logs",
    "/api/v1/costs/model",
    "/api/v1/users",
    "/api/v1/metrics/credits_used",
]


@pytest.mark.postgres
def test_every_route_answers_503_in_the_envelope_while_postgresql_is_down(
    proxied_settings: tuple[Settings, TcpProxy],
) -> None:
    settings, proxy = proxied_settings
    store = open_store(settings)
    server = LiveServer(create_app(settings, store=store)).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            assert client.get("/api/v1/spans").status_code == 200
            proxy.cut()
            for path in API_ROUTES:
                response = client.get(path)
                assert_envelope(response, 503)
                assert response.headers["retry-after"].isdigit(), path
                assert str(proxy.port) not in response.text
            proxy.restore()
            assert client.get("/api/v1/spans").status_code == 200
    finally:
        server.stop()
        store.close()


def test_a_store_that_cannot_be_opened_is_a_503_on_a_real_server() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    # Nothing listens there any more: every connection is refused, the store never opens.
    settings = load_settings(
        database_url=f"postgresql://watch:secret@127.0.0.1:{port}/wk", api_keys=[API_KEY]
    )
    server = LiveServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            for path in API_ROUTES:
                response = client.get(path)
                assert_envelope(response, 503)
                assert response.headers["retry-after"].isdigit()
                assert str(port) not in response.text
    finally:
        server.stop()


def test_a_sqlite_file_that_broke_is_a_503(tmp_path: Path) -> None:
    # Without the alert evaluator, whose connection, opened before the file breaks, would read
    # the pages SQLite cached of it: the request must be the first to open the broken file.
    settings = load_settings(sqlite_path=tmp_path / "broken.db", api_keys=[API_KEY], alerts=False)
    store = open_store(settings)
    try:
        with TestClient(create_app(settings, store=store)) as client:
            assert client.get("/api/v1/spans", headers=AUTH).status_code == 200
            store.engine.dispose()
            (tmp_path / "broken.db").write_bytes(b"this is not a database" * 100)
            response = client.get("/api/v1/spans", headers=AUTH)
            assert_envelope(response, 503)
            assert response.headers["retry-after"].isdigit()
    finally:
        store.close()


def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(sqlite_path=tmp_path / "bug.db", api_keys=[API_KEY])
    store = open_store(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in Watchkeeper")

    monkeypatch.setattr(SqlStore, "spans", broken)
    server = LiveServer(create_app(settings, store=store)).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            error = assert_envelope(client.get("/api/v1/spans"), 500)
            assert "ZeroDivisionError" not in error["message"]
            assert client.get("/api/v1/logs").status_code == 200
    finally:
        server.stop()
        store.close()


def test_the_live_figures_survive_a_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing query must not end the task that publishes figures for the whole process."""
    settings = load_settings(sqlite_path=tmp_path / "live.db", api_keys=[API_KEY])
    store = open_store(settings)
    calls = 0

    def failing_then_working(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return []

    monkeypatch.setattr(store, "kind_totals", failing_then_working)
    monkeypatch.setattr(live, "FIGURES_INTERVAL", 0.01)
    context = ApiContext.build(StoreHandle(settings, store), settings, None)
    hub = LiveHub()

    async def run() -> dict[str, Any]:
        subscriber = hub.subscribe()
        task = asyncio.create_task(live.publish_figures(context, hub))
        try:
            return await asyncio.wait_for(subscriber.queue.get(), 10)
        finally:
            task.cancel()

    try:
        message = asyncio.run(run())
    finally:
        store.close()
    assert message["type"] == "figures"
    assert calls >= 2


@pytest.mark.parametrize(
    ("path", "served"),
    [("/api/v1/keys", {"GET", "POST"}), ("/api/v1/alerts/rules", {"GET", "POST"})],
)
def test_a_method_no_route_serves_is_a_405_naming_every_method_of_the_path(
    client: TestClient, path: str, served: set[str]
) -> None:
    response = client.request("PATCH", path, headers=AUTH)
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405
    assert set(response.headers["allow"].split(", ")) == served
