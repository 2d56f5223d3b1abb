"""The alerts API on a real server over a real SQLite store: rules validated and changed,
an alert fired by the running evaluator, acknowledged, silenced, exported and in health."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerts.support import drops
from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store

API_KEY = "alerts-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DEADLINE = 60.0

RULE = {
    "name": "Dropping",
    "signal": {"kind": "recorder_drops"},
    "thresholds": {"warning": 0},
    "channels": {"warning": [["ops"]]},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    path = tmp_path / "alerts.db"
    settings = load_settings(
        sqlite_path=path,
        api_keys=[API_KEY],
        alert_interval=1.0,
        alert_channels='{"ops": {"kind": "recording"}}',
    )
    live = LiveServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=live.url, headers=AUTH, timeout=30) as client:
            yield client, path
    finally:
        live.stop()


def wait_for(client: httpx.Client, path: str, found: object) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE
    while True:
        response = client.get(path)
        if response.status_code == 200 and callable(found) and found(response.json()):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never showed it: {response.text}")
        time.sleep(0.1)


def test_rules_are_validated_and_changed_through_the_api(
    server: tuple[httpx.Client, Path],
) -> None:
    client, _ = server
    bad = client.post("/api/v1/alerts/rules", json={**RULE, "thresholds": {}})
    assert bad.status_code == 400
    assert "set a warning or a critical threshold" in bad.text
    unnamed = client.post("/api/v1/alerts/rules", json={**RULE, "name": "1st"})
    assert unnamed.status_code == 422
    assert "name" in unnamed.json()["error"]["details"][0]["location"]
    unknown = client.post(
        "/api/v1/alerts/rules", json={**RULE, "channels": {"warning": [["pager"]]}}
    )
    assert unknown.status_code == 400
    assert "pager" in unknown.json()["error"]["message"]
    created = client.post("/api/v1/alerts/rules", json=RULE)
    assert created.status_code == 201
    assert client.post("/api/v1/alerts/rules", json=RULE).status_code == 409
    names = [rule["name"] for rule in client.get("/api/v1/alerts/rules").json()["rules"]]
    assert "Dropping" in names
    assert "IntegrationDown" in names  # a default rule, seeded by the evaluator
    off = client.post("/api/v1/alerts/rules/Dropping/disable")
    assert off.json()["enabled"] is False
    assert client.delete("/api/v1/alerts/rules/Dropping").status_code == 204
    assert client.get("/api/v1/alerts/rules/Dropping").status_code == 404
    preview = client.post("/api/v1/alerts/rules/preview", json=RULE)
    assert len(preview.json()["points"]) == 96
    audited = client.get("/api/v1/audit", params={"action": "rule.changed"}).json()
    assert [entry["resource"] for entry in audited].count("Dropping") == 3


def test_an_alert_fires_is_acknowledged_silenced_exported_and_in_health(
    server: tuple[httpx.Client, Path],
) -> None:
    client, path = server
    assert client.post("/api/v1/alerts/rules", json=RULE).status_code == 201
    store = open_store(load_settings(sqlite_path=path))
    try:
        drops(store, time.time(), 3)
    finally:
        store.close()
    firing = wait_for(
        client,
        "/api/v1/alerts",
        lambda body: any(
            alert["rule"] == "Dropping" and alert["state"] == "firing" for alert in body["alerts"]
        ),
    )
    (alert,) = [a for a in firing.json()["alerts"] if a["rule"] == "Dropping"]
    assert alert["value"] == 3
    assert httpx.get(str(client.base_url.join("/health/alerts"))).status_code == 401
    health = client.get("/health/alerts")
    assert health.json()["status"] in ("warn", "fail")
    assert health.headers["content-type"].startswith("application/health+json")
    assert 'ALERTS{alertname="Dropping",alertstate="firing",severity="warning"} 1.0' in (
        client.get("/metrics").text
    )
    acked = client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"by": "ana", "note": "on it"})
    assert acked.json()["acknowledged"]["by"] == "ana"
    detail = wait_for(
        client,
        f"/api/v1/alerts/{alert['id']}",
        lambda body: any(n["status"] == "delivered" for n in body["notifications"]),
    ).json()
    assert [entry["event"] for entry in detail["history"]][:2] == ["pending", "firing"]
    silence = client.post(
        "/api/v1/alerts/silences",
        json={"matchers": [{"name": "alertname", "value": "Dropping"}], "duration_seconds": 60},
    )
    assert silence.status_code == 201
    bad = client.post(
        "/api/v1/alerts/silences",
        json={"matchers": [{"name": "x", "op": "=~", "value": "("}], "duration_seconds": 60},
    )
    assert bad.status_code == 422
    assert client.delete(f"/api/v1/alerts/silences/{silence.json()['id']}").status_code == 204
    assert client.get("/api/v1/alerts/history").json()["alerts"]
    actions = {entry["action"] for entry in client.get("/api/v1/audit").json()}
    assert {"alert.acknowledged", "silence.changed"} <= actions


def test_an_organisations_admin_acknowledges_only_its_organisations_alerts(
    server: tuple[httpx.Client, Path],
) -> None:
    client, path = server
    for name, organisation in (("Ours", "org-a"), ("Everyones", None)):
        rule = {**RULE, "name": name, "signal": {**RULE["signal"], "organisation": organisation}}  # type: ignore[dict-item]
        assert client.post("/api/v1/alerts/rules", json=rule).status_code == 201
    store = open_store(load_settings(sqlite_path=path))
    try:
        drops(store, time.time(), 2)
    finally:
        store.close()
    firing = wait_for(
        client,
        "/api/v1/alerts",
        lambda body: (
            {"Ours", "Everyones"} <= {a["rule"] for a in body["alerts"] if a["state"] == "firing"}
        ),
    ).json()["alerts"]
    ids = {alert["rule"]: alert["id"] for alert in firing}

    def admin_of(organisation: str) -> dict[str, str]:
        created = client.post(
            "/api/v1/keys", json={"name": organisation, "role": "org_admin", "org_id": organisation}
        )
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {created.json()['token']}"}

    ours, theirs = admin_of("org-a"), admin_of("org-b")
    note = {"by": "ana", "note": "looking"}
    refused = client.post(f"/api/v1/alerts/{ids['Ours']}/ack", json=note, headers=theirs)
    assert refused.status_code == 403
    assert refused.json()["error"]["status"] == 403
    everyones = client.post(f"/api/v1/alerts/{ids['Everyones']}/ack", json=note, headers=ours)
    assert everyones.status_code == 403
    acked = client.post(f"/api/v1/alerts/{ids['Ours']}/ack", json=note, headers=ours)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged"]["by"] == "ana"
