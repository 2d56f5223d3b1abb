import time

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, fill
from watchkeeper.storage.sql_store import SqlStore

ROUTES = [
    "/api/v1/overview",
    "/api/v1/routes",
    "/api/v1/kinds/tool",
    "/api/v1/kinds/agent",
    "/api/v1/kinds/queue",
    "/api/v1/series",
    "/api/v1/integrations",
    "/api/v1/spans",
    "/api/v1/sessions",
    "/api/v1/errors",
    "/api/v1/validations",
    "/api/v1/logs",
    "/api/v1/costs/model",
    "/api/v1/costs/user",
    "/api/v1/costs/org",
    "/api/v1/users",
    "/api/v1/organisations",
    "/api/v1/metrics/credits_used",
]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_answers_empty_and_rejects_missing_or_wrong_keys(
    client: TestClient, path: str
) -> None:
    assert client.get(path, headers=AUTH).status_code == 200
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_routes_with_data(client: TestClient, store: SqlStore) -> None:
    ids = fill(store, time.time())
    overview = client.get("/api/v1/overview", headers=AUTH).json()
    headline = overview["headline"]
    assert headline["requests"] == 60
    assert headline["errors"] == 6
    assert headline["error_rate"] == pytest.approx(0.1)
    assert headline["p50"] == pytest.approx(0.4, rel=0.02)
    assert headline["active_sessions"] == 1  # s-1 has ended
    assert headline["cost"] == pytest.approx(60 * 0.0004)
    assert {item["name"] for item in overview["by_kind"]["tool"]} == {"search_docs"}

    (integration,) = client.get("/api/v1/integrations", headers=AUTH).json()
    assert (integration["name"], integration["status"]) == ("openai", "pass")
    figures = integration["figures"]  # judged over the last five minutes only
    assert 0 < figures["count"] <= 60
    assert figures["input_tokens"] == 120 * figures["count"]

    (model,) = client.get("/api/v1/costs/model", headers=AUTH).json()
    assert (model["value"], model["count"]) == ("gpt-4o-mini", 60)

    groups = client.get("/api/v1/errors", headers=AUTH).json()
    (group,) = [g for g in groups if g["source"] == "request"]
    assert (group["error_type"], group["count"]) == ("TimeoutError", 6)
    patterns = [g["title"] for g in groups if g["source"] == "pattern"]
    assert patterns == ["chart slow: <num>% of budget"]  # the warning logged

    (issue,) = client.get("/api/v1/validations", headers=AUTH).json()["items"]
    assert (issue["passed"], issue["observed"], issue["severity"]) == (False, 0.41, "error")

    trace = client.get(f"/api/v1/traces/{ids['trace']}", headers=AUTH).json()
    (root,) = trace["roots"]
    assert root["span"]["name"] == "POST /api/guidance"
    (llm,) = root["children"]
    assert llm["span"]["name"] == "openai"
    assert llm["children"][0]["span"]["name"] == "search_docs"

    timeline = client.get("/api/v1/sessions/s-0", headers=AUTH).json()
    assert timeline["session"]["spans"] == 90
    assert len(timeline["roots"]) == 30
    assert timeline["snapshots"][0]["data"] == {"text": "Will I move?"}
    assert len(timeline["validations"]) == 2
    ended = client.get("/api/v1/sessions/s-1", headers=AUTH).json()["session"]
    assert ended["ended_at"] is not None

    logs = client.get("/api/v1/logs", params={"text": "100%"}, headers=AUTH).json()["items"]
    assert [log["message"] for log in logs] == ["chart slow: 100% of budget"]


def test_pagination_walks_every_span_once(client: TestClient, store: SqlStore) -> None:
    fill(store, time.time())
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7, "kind": "request"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/spans", params=params, headers=AUTH).json()
        seen += [item["span_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 60


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/v1/spans?limit=5000", 422, "query.limit"),
        ("/api/v1/spans?cursor=not-a-cursor", 400, "cursor"),
        ("/api/v1/overview?range=2d", 422, "query.range"),
        ("/api/v1/overview?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "before"),
        ("/api/v1/overview?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "400 days"),
        ("/api/v1/overview?range=1h&from=2026-01-01T00:00:00Z", 400, "not both"),
        ("/api/v1/overview?to=0.5", 422, "ISO 8601"),
        ("/api/v1/logs?to=0001-01-01T00:00:00Z", 400, "year 1"),
        ("/api/v1/overview?range=7d&to=0001-01-03T00:00:00Z", 400, "year 1"),
        ("/api/v1/sessions/unknown", 404, "no session"),
        ("/api/v1/traces/0123", 422, "path.trace_id"),
        (f"/api/v1/traces/{'0' * 31}1", 404, "no trace"),
        ("/api/v1/kinds/planet", 422, "path.kind"),
    ],
)
def test_bad_parameters_get_clear_4xx(
    client: TestClient, path: str, status: int, says: str
) -> None:
    response = client.get(path, headers=AUTH)
    assert response.status_code == status
    assert says in response.text


def test_recorder_route_in_process(client: TestClient) -> None:
    response = client.get("/api/v1/recorder", headers=AUTH)
    assert response.status_code == 404
    assert "records nothing itself" in response.json()["error"]["message"]
