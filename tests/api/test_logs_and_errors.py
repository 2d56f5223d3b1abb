"""The logs and errors API on a real server: search with filters and pages, a trace's and a
session's logs, error groups with flags, their status set through PATCH, and bad input as 4xx
in the envelope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import API_KEY, AUTH
from tests.api.test_errors import assert_envelope
from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.model.events import LogRecord
from watchkeeper.model.ids import format_trace_id
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

TRACE = 0xFEED


def _serve(path: Path) -> Iterator[tuple[httpx.Client, SqlStore]]:
    settings = load_settings(sqlite_path=path / "api.db", api_keys=[API_KEY])
    store = open_store(settings)
    server = LiveServer(create_app(settings, store=store)).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            yield client, store
    finally:
        server.stop()
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, SqlStore]]:
    yield from _serve(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, SqlStore]]:
    """One server for the requests that only read an empty store."""
    yield from _serve(tmp_path_factory.mktemp("shared"))


def _fill(store: SqlStore, now: float) -> None:
    logs = [
        LogRecord(now - 50, 20, "app.chart", "chart computed for user 42", trace_id=TRACE,
                  session_id="s-1", user_id="u-1", attributes={"house": "scorpio"}),
        LogRecord(now - 40, 30, "app.chart", "chart slow: 3012 ms", trace_id=TRACE,
                  session_id="s-1"),
        LogRecord(now - 30, 40, "app.pay", "payment failed", exception_type="KeyError",
                  exception="Traceback…\nKeyError: 'card'", frames=(("app.pay", "charge"),),
                  session_id="s-2"),
        *(LogRecord(now - 20 + i / 10, 20, "app.bulk", f"bulk line {i}") for i in range(12)),
    ]  # fmt: skip
    failures = [
        span(now - 25 + i, error=True, error_type="TimeoutError",
             error_message=f"timeout after {ms} ms for user {user}", user_id=f"u{user}")
        for i, (ms, user) in enumerate([(3012, 42), (871, 7)])
    ]  # fmt: skip
    store.write(batch_of(failures, logs=logs))


def _messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["message"] for item in response.json()["items"]]


def test_log_search_filters_and_pages(served: tuple[httpx.Client, SqlStore]) -> None:
    client, store = served
    _fill(store, time.time())

    assert _messages(client.get("/api/v1/logs", params={"q": "chart"})) == [
        "chart slow: 3012 ms",
        "chart computed for user 42",
    ]
    assert _messages(client.get("/api/v1/logs", params={"q": "SCORP"})) == [
        "chart computed for user 42"
    ]
    assert _messages(client.get("/api/v1/logs", params={"q": "chart", "level": 30})) == [
        "chart slow: 3012 ms"
    ]
    assert _messages(client.get("/api/v1/logs", params={"logger": "app.pay"})) == ["payment failed"]
    assert _messages(client.get("/api/v1/logs", params={"user_id": "u-1"})) == [
        "chart computed for user 42"
    ]
    (found,) = client.get("/api/v1/logs", params={"q": "card"}).json()["items"]
    assert (found["exception_type"], found["session_id"]) == ("KeyError", "s-2")
    grouped = client.get("/api/v1/logs", params={"error_group": found["error_group"]})
    assert _messages(grouped) == ["payment failed"]

    seen: list[str] = []
    params: dict[str, Any] = {"q": "bulk", "limit": 5}
    while True:
        page = client.get("/api/v1/logs", params=params).json()
        seen += [item["message"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"bulk line {i}" for i in reversed(range(12))]

    trace = format_trace_id(TRACE)
    assert _messages(client.get(f"/api/v1/traces/{trace}/logs")) == [
        "chart slow: 3012 ms",
        "chart computed for user 42",
    ]
    assert _messages(client.get(f"/api/v1/traces/{trace}/logs", params={"level": 30})) == [
        "chart slow: 3012 ms"
    ]
    assert _messages(client.get("/api/v1/sessions/s-2/logs")) == ["payment failed"]
    assert _messages(client.get("/api/v1/sessions/nobody/logs")) == []


def _group(client: httpx.Client, title_start: str) -> dict[str, Any]:
    response = client.get("/api/v1/errors")
    assert response.status_code == 200, response.text
    (group,) = [g for g in response.json() if g["title"].startswith(title_start)]
    return group


def test_error_groups_and_their_status(served: tuple[httpx.Client, SqlStore]) -> None:
    client, store = served
    now = time.time()
    _fill(store, now)

    timeouts = _group(client, "TimeoutError")
    assert (timeouts["count"], timeouts["users"], timeouts["flags"]) == (2, 2, ["new"])
    assert timeouts["status"] == "new"
    assert timeouts["sample_trace_id"] is not None
    warning = _group(client, "chart slow")
    assert (warning["source"], warning["title"]) == ("pattern", "chart slow: <num> ms")

    detail = client.get(f"/api/v1/errors/{_group(client, 'KeyError')['id']}").json()
    assert detail["frames"] == [["app.pay", "charge"]]
    assert detail["samples"][0]["detail"] == "Traceback…\nKeyError: 'card'"

    path = f"/api/v1/errors/{timeouts['id']}"
    resolved = client.patch(path, json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["group"]["status"] == "resolved"
    assert [
        g["id"] for g in client.get("/api/v1/errors", params={"status": "resolved"}).json()
    ] == [timeouts["id"]]

    store.write(
        batch_of([span(time.time() + 1, error=True, error_type="TimeoutError",
                       error_message="timeout after 5 ms for user 9")])
    )  # fmt: skip
    back = _group(client, "TimeoutError")
    assert back["status"] == "regressed"
    assert "regressed" in back["flags"]
    flagged = client.get("/api/v1/errors", params={"flag": "regressed"}).json()
    assert [g["id"] for g in flagged] == [timeouts["id"]]

    ignored = client.patch(path, json={"status": "ignored"})
    assert ignored.json()["group"]["status"] == "ignored"


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("GET", "/api/v1/logs", {"q": "%%%"}, None, 400),
        ("GET", "/api/v1/logs", {"q": " ".join(f"w{i}" for i in range(20))}, None, 400),
        ("GET", "/api/v1/logs", {"q": ""}, None, 422),
        ("GET", "/api/v1/logs", {"q": "x" * 513}, None, 422),
        ("GET", "/api/v1/logs", {"q": "a\x00b"}, None, 422),
        ("GET", "/api/v1/logs", {"level": "LOUD"}, None, 422),
        ("GET", "/api/v1/logs", {"error_group": "not-hex"}, None, 422),
        ("GET", "/api/v1/logs", {"cursor": "bm9wZQ"}, None, 400),
        ("GET", "/api/v1/traces/xyz/logs", {}, None, 422),
        ("GET", "/api/v1/errors", {"flag": "exciting"}, None, 422),
        ("GET", "/api/v1/errors", {"status": "sad"}, None, 422),
        ("GET", "/api/v1/errors/nothex", {}, None, 422),
        ("GET", f"/api/v1/errors/{'0' * 32}", {}, None, 404),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, {"status": "resolved"}, 404),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, {"status": "new"}, 422),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, {"status": "regressed"}, 422),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, {"status": "resolved", "x": 1}, 422),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, {}, 422),
        ("PATCH", f"/api/v1/errors/{'0' * 32}", {}, None, 422),
    ],
)
def test_bad_input_is_a_4xx_in_the_envelope(
    shared: tuple[httpx.Client, SqlStore],
    method: str,
    path: str,
    params: dict[str, Any],
    body: dict[str, Any] | None,
    status: int,
) -> None:
    client, _ = shared
    response = client.request(method, path, params=params, json=body)
    assert_envelope(response, status)


def test_patching_needs_a_key(shared: tuple[httpx.Client, SqlStore]) -> None:
    client, _ = shared
    response = httpx.patch(
        f"{client.base_url}/api/v1/errors/{'0' * 32}", json={"status": "resolved"}, timeout=30
    )
    assert_envelope(response, 401)
