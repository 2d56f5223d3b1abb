"""What the dashboard shows, from the API over a real store (SQLite, and PostgreSQL if named):
rates over the covered part of a range, request costs from the AI calls under them, the trace
list and its filters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API_KEY, AUTH
from tests.support.stores import StoreTarget, batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage import migrate
from watchkeeper.storage.factory import postgres_url as psycopg_url
from watchkeeper.storage.sql_store import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, SqlStore]]:
    if request.param == "sqlite":
        target = StoreTarget(f"sqlite:///{tmp_path / 'figures.db'}")
    else:
        base_url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        url = psycopg_url(base_url).render_as_string(hide_password=False)
        target = StoreTarget(url, schema)
    store = SqlStore(target.engine())
    migrate.upgrade(store.engine)
    settings = load_settings(sqlite_path=tmp_path / "unused.db", api_keys=[API_KEY])
    try:
        with TestClient(create_app(settings, store=store)) as client:
            yield client, store
    finally:
        store.close()


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/{path}", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def minute_ago(minutes: int) -> float:
    """The start of the minute ``minutes`` before the current one."""
    now = time.time()
    return now - now % 60 - 60 * minutes


# ---- requests per second -----------------------------------------------------------------------


@pytest.mark.parametrize("range_", ["1h", "24h"])
def test_rates_are_over_the_time_the_range_holds_data(
    served: tuple[TestClient, SqlStore], range_: str
) -> None:
    client, store = served
    first = minute_ago(2)
    store.write(batch_of([span(first + index, 0.05, name="GET /a") for index in range(120)]))
    asked = time.time()
    headline = get(client, "overview", range=range_)["headline"]
    # From the first minute holding data to now: two minutes and a bit, not the whole range.
    assert datetime.fromisoformat(headline["covered_from"]) == datetime.fromtimestamp(first, UTC)
    assert headline["covered_seconds"] == pytest.approx(asked - first, abs=2)
    assert headline["requests"] == 120
    assert headline["requests_per_second"] == pytest.approx(120 / (asked - first), rel=0.02)
    assert headline["requests_per_second"] > 0.6  # an hour's division would give 0.03


def test_an_empty_range_has_no_rate(served: tuple[TestClient, SqlStore]) -> None:
    client, _ = served
    headline = get(client, "overview")["headline"]
    assert headline["requests_per_second"] == 0.0
    assert headline["cost_per_hour"] == 0.0
    assert headline["covered_from"] is None


# ---- request costs -----------------------------------------------------------------------------


def nested_traffic(start: float) -> list[Span]:
    """Route /a calls two AI services (one inside an agent) and, through an HTTP integration, a
    second instrumented service's route /b, which makes an AI call of its own."""
    trace = int(start)  # one trace per call
    spans = [
        span(start, 2.0, name="GET /a", trace_id=trace, span_id=1, user_id="u-a"),
        span(
            start + 0.1,
            1.0,
            kind=SpanKind.AGENT,
            name="guide",
            trace_id=trace,
            span_id=2,
            parent_id=1,
        ),
        span(
            start + 0.2,
            0.5,
            kind=SpanKind.INTEGRATION,
            name="openai",
            trace_id=trace,
            span_id=3,
            parent_id=2,
            model="gpt-4o-mini",
            input_tokens=100,
            output_tokens=50,
            cost=0.01,
        ),
        span(
            start + 1.2,
            0.3,
            kind=SpanKind.INTEGRATION,
            name="anthropic",
            trace_id=trace,
            span_id=4,
            parent_id=1,
            input_tokens=10,
            output_tokens=5,
            cost=0.02,
        ),
        span(
            start + 1.5,
            0.4,
            kind=SpanKind.INTEGRATION,
            name="service-b",
            trace_id=trace,
            span_id=5,
            parent_id=1,
        ),
        span(start + 1.55, 0.3, name="GET /b", trace_id=trace, span_id=6, parent_id=5),
        span(
            start + 1.6,
            0.2,
            kind=SpanKind.INTEGRATION,
            name="openai",
            trace_id=trace,
            span_id=7,
            parent_id=6,
            input_tokens=7,
            output_tokens=3,
            cost=0.05,
        ),
        # An unpriced call: tokens, no cost.
        span(
            start + 1.7,
            0.1,
            kind=SpanKind.INTEGRATION,
            name="local-llm",
            trace_id=trace,
            span_id=8,
            parent_id=6,
            input_tokens=4,
            output_tokens=4,
        ),
    ]
    # A background AI call outside any request belongs to no route.
    spans.append(
        span(
            start + 3,
            0.2,
            kind=SpanKind.INTEGRATION,
            name="openai",
            cost=1.0,
            input_tokens=1,
            output_tokens=1,
        )
    )
    return spans


def test_a_route_costs_what_the_ai_calls_under_its_requests_cost(
    served: tuple[TestClient, SqlStore],
) -> None:
    client, store = served
    start = minute_ago(3) + 5
    store.write(batch_of(nested_traffic(start) + nested_traffic(start + 60)))
    routes = {row["name"]: row for row in get(client, "routes")}
    assert routes["GET /a"]["cost"] == pytest.approx(2 * 0.03)
    assert (routes["GET /a"]["input_tokens"], routes["GET /a"]["output_tokens"]) == (220, 110)
    assert routes["GET /b"]["cost"] == pytest.approx(2 * 0.05)
    assert routes["GET /b"]["cost_unknown"] == 2
    assert get(client, "kinds/request") == list(routes.values())
    by_kind = {row["name"]: row for row in get(client, "overview")["by_kind"]["request"]}
    assert by_kind["GET /a"]["cost"] == pytest.approx(0.06)
    # The headline still counts every AI call once, background ones included.
    assert get(client, "overview")["headline"]["cost"] == pytest.approx(2 * (0.08 + 1.0))


def test_cost_per_bucket_is_that_of_the_requests_starting_in_it(
    served: tuple[TestClient, SqlStore],
) -> None:
    client, store = served
    start = minute_ago(3) + 5
    store.write(batch_of(nested_traffic(start) + nested_traffic(start + 60)))
    points = get(client, "series", kind="request")
    assert [point["count"] for point in points] == [2, 2]
    assert [point["cost"] for point in points] == pytest.approx([0.08, 0.08])
    assert [point["input_tokens"] for point in points] == [121, 121]
    only_b = get(client, "series", kind="request", name="GET /b")
    assert [point["cost"] for point in only_b] == pytest.approx([0.05, 0.05])
    # Other kinds keep their own figures.
    ai = get(client, "series", kind="integration")
    assert sum(point["cost"] for point in ai) == pytest.approx(2 * 1.08)


# ---- the trace list ----------------------------------------------------------------------------


def identity_traffic(now: float) -> list[Span]:
    spans = []
    for index in range(12):
        start = now - 200 + index * 10
        request = span(
            start,
            0.3,
            name=f"GET /r{index % 3}",
            trace_id=0x100 + index,
            span_id=0x200 + index,
            user_id=f"user-{index % 4}",
            session_id=f"session-{index % 2}",
            org_id="acme",
        )
        failing = index == 7
        call = span(
            start + 0.1,
            0.1,
            kind=SpanKind.INTEGRATION,
            name="openai",
            trace_id=0x100 + index,
            span_id=0x300 + index,
            parent_id=0x200 + index,
            error=failing,
            error_type="Timeout" if failing else None,
            cost=0.001,
        )
        spans += [request, call]
    # A trace that starts without a request (a queue worker's job).
    spans.append(
        span(
            now - 30,
            0.2,
            kind=SpanKind.QUEUE,
            name="jobs",
            trace_id=0x999,
            span_id=0x999,
            user_id="user-1",
        )
    )
    return spans


def test_the_trace_list_finds_traces_by_id_user_and_session(
    served: tuple[TestClient, SqlStore],
) -> None:
    client, store = served
    store.write(batch_of(identity_traffic(time.time())))
    everything = get(client, "traces")["items"]
    assert len(everything) == 13
    starts = [item["start"] for item in everything]
    assert starts == sorted(starts, reverse=True)
    first = everything[-1]
    assert (first["name"], first["spans"], first["errors"]) == ("GET /r0", 2, 0)
    assert first["cost"] == pytest.approx(0.001)

    by_user = get(client, "traces", user_id="user-1")["items"]
    assert {item["trace_id"][-3:] for item in by_user} == {"101", "105", "109", "999"}
    assert {item["user_id"] for item in by_user} == {"user-1"}
    by_session = get(client, "traces", session_id="session-0")["items"]
    assert len(by_session) == 6
    assert {item["session_id"] for item in by_session} == {"session-0"}
    both = get(client, "traces", user_id="user-1", session_id="session-1")["items"]
    assert {item["trace_id"][-3:] for item in both} == {"101", "105", "109"}
    assert get(client, "traces", user_id="user-") == {"items": [], "next_cursor": None}

    wanted = f"{0x105:032x}"
    (found,) = get(client, "traces", trace_id=wanted.upper())["items"]
    assert (found["trace_id"], found["name"]) == (wanted, "GET /r2")


def test_routes_and_errors_lead_to_their_traces(served: tuple[TestClient, SqlStore]) -> None:
    client, store = served
    store.write(batch_of(identity_traffic(time.time())))
    route = get(client, "traces", kind="request", name="GET /r1")["items"]
    assert {item["name"] for item in route} == {"GET /r1"}
    assert len(route) == 4
    # The error is an AI call's; its trace is listed by the request that made it.
    (failed,) = get(client, "traces", kind="integration", name="openai", errors_only=True)["items"]
    assert (failed["trace_id"][-3:], failed["name"], failed["errors"]) == ("107", "GET /r1", 1)
    (failed_route,) = get(client, "traces", errors_only=True)["items"]
    assert failed_route["trace_id"] == failed["trace_id"]


def test_the_trace_list_pages_through_every_trace_once(
    served: tuple[TestClient, SqlStore],
) -> None:
    client, store = served
    store.write(batch_of(identity_traffic(time.time())))
    seen: list[str] = []
    cursor = None
    while True:
        page = get(client, "traces", limit=5, **({"cursor": cursor} if cursor else {}))
        seen += [item["trace_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 13


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"trace_id": "12345"}, "query.trace_id"),
        ({"trace_id": "g" * 32}, "query.trace_id"),
        ({"user_id": ""}, "query.user_id"),
        ({"user_id": "u" * 257}, "query.user_id"),
        ({"session_id": "s" * 257}, "query.session_id"),
        ({"name": "n" * 513}, "query.name"),
        ({"kind": "planet"}, "query.kind"),
        ({"errors_only": "maybe"}, "query.errors_only"),
        ({"limit": 0}, "query.limit"),
    ],
)
def test_trace_list_filters_are_validated(
    served: tuple[TestClient, SqlStore], params: dict[str, Any], location: str
) -> None:
    client, _ = served
    response = client.get("/api/v1/traces", params=params, headers=AUTH)
    assert response.status_code == 422
    assert location in {detail["location"] for detail in response.json()["error"]["details"]}


def test_the_trace_list_needs_a_key(served: tuple[TestClient, SqlStore]) -> None:
    client, _ = served
    assert client.get("/api/v1/traces").status_code == 401
    assert client.get("/api/v1/traces?cursor=nonsense", headers=AUTH).status_code == 400
