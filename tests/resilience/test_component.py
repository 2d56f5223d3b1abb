"""Resilience as users run it, inside an instrumented app: policies from the file and the
environment, the breaker in health, the configuration, the API, /metrics and the live feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.sync.client import connect

import watchkeeper
from tests.resilience.flaky import FlakyService
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import ConfigurationError, load_settings
from watchkeeper.recording.default import set_recorder
from watchkeeper.resilience import registry
from watchkeeper.resilience.loading import load_policies
from watchkeeper.runtime.runtime import Runtime

KEY = "resilience-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(autouse=True)
def fresh_resilience(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's app configures a process-wide resilience of its own."""
    monkeypatch.setattr(registry, "_default", None)


@pytest.fixture
def app_url(tmp_path: Path, url: str) -> Iterator[tuple[str, Runtime]]:
    policies = tmp_path / "resilience.toml"
    policies.write_text(
        "[defaults]\ntimeout = 20\n\n"
        "[svc]\nretry = { attempts = 1 }\n"
        "breaker = { consecutive_failures = 2, cool_down = 600 }\n"
    )
    settings = load_settings(
        sqlite_path=tmp_path / "wk.db",
        api_keys=[KEY],
        flush_interval=0.05,
        resilience_file=policies,
        resilience_policies={"svc": {"deadline": 45}},
    )
    app = FastAPI()

    @app.get("/ask")
    def ask() -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        try:
            return watchkeeper.resilient("svc").call(fetch)
        except Exception as error:
            return {"error": type(error).__name__}

    runtime = watchkeeper.instrument(app, settings, outbound=False)
    server = LiveServer(app).start()
    try:
        yield server.url, runtime
    finally:
        server.stop()
        set_recorder(None)


def test_an_open_breaker_shows_everywhere(
    app_url: tuple[str, Runtime], service: FlakyService
) -> None:
    base, runtime = app_url
    assert runtime.api is not None
    live = base.replace("http://", "ws://") + "/watchkeeper/api/v1/live"
    with connect(live, open_timeout=5) as socket, httpx.Client(base_url=base, timeout=10) as client:
        socket.send(json.dumps({"type": "auth", "key": KEY}))
        assert json.loads(socket.recv(timeout=10)) == {"type": "ready"}
        wait_until(lambda: runtime.api is not None and runtime.api.hub.subscribers > 0)

        service.fail_with(503)
        assert client.get("/ask").json() == {"error": "HTTPStatusError"}
        assert client.get("/ask").json() == {"error": "HTTPStatusError"}
        assert client.get("/ask").json() == {"error": "CircuitOpen"}
        assert service.hits == 2

        health = client.get("/health", headers=AUTH)
        assert health.status_code == 503
        (check,) = health.json()["checks"]["svc:circuit"]
        assert (check["status"], check["observedValue"]) == ("fail", "open")

        configuration = client.get("/health/configuration", headers=AUTH).json()
        (svc,) = [
            item for item in configuration["resilience"]["integrations"] if item["name"] == "svc"
        ]
        assert svc["policy"]["timeout"] == 20  # the file's defaults
        assert svc["policy"]["deadline"] == 45  # the environment, over the file
        assert svc["policy"]["retry"]["attempts"] == 1
        assert svc["circuit"] == "open"
        assert configuration["resilience"]["state"] == {"kind": "memory", "shared": False}

        api = client.get("/watchkeeper/api/v1/resilience", headers=AUTH)
        assert api.status_code == 200
        assert api.json()["integrations"] == configuration["resilience"]["integrations"]
        assert client.get("/watchkeeper/api/v1/resilience").status_code == 401

        events: list[dict[str, Any]] = []
        while not any(event["event"] == "circuit" for event in events):
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "resilience":
                events += message["events"]
        circuit = next(event for event in events if event["event"] == "circuit")
        assert (circuit["integration"], circuit["after"]) == ("svc", "open")
        assert any(event["event"] == "rejected" for event in events)

        def exported() -> str:
            return client.get("/metrics", headers=AUTH).text

        wait_until(lambda: 'watchkeeper_circuit_state{integration="svc"} 2.0' in exported())
        text = exported()
        assert (
            'watchkeeper_resilience_rejections_total{integration="svc",reason="circuit_open"} 1.0'
            in text
        )
        assert (
            'watchkeeper_circuit_transitions_total{from="closed",integration="svc",to="open"} 1.0'
            in text
        )

        def stored() -> list[dict[str, Any]]:
            answer = client.get("/watchkeeper/api/v1/metrics/resilience.circuit", headers=AUTH)
            points: list[dict[str, Any]] = answer.json()
            return points

        wait_until(lambda: bool(stored()), what="the transition to be stored")
        (point,) = stored()
        assert point["value"] == 2
        assert point["attributes"]["integration"] == "svc"
        assert point["attributes"]["reason"] == "2 failures in a row"


def test_a_bad_policy_fails_the_start_naming_where_it_is(tmp_path: Path) -> None:
    policies = tmp_path / "resilience.yaml"
    policies.write_text("openai:\n  retry:\n    attempts: 0\n")
    settings = load_settings(sqlite_path=tmp_path / "wk.db", resilience_file=policies)
    with pytest.raises(ConfigurationError) as failed:
        watchkeeper.instrument(FastAPI(), settings, outbound=False)
    message = str(failed.value)
    assert str(policies) in message
    assert "[openai] retry.attempts" in message
    assert "(given 0)" in message
    set_recorder(None)


def test_yaml_and_toml_say_the_same(tmp_path: Path) -> None:
    toml = tmp_path / "policies.toml"
    toml.write_text(
        "[elevenlabs]\n"
        "rate_limit = { requests_per_minute = 30, wait = 2 }\n"
        'hosts = ["api.elevenlabs.io"]\n'
    )
    yaml = tmp_path / "policies.yml"
    yaml.write_text(
        "elevenlabs:\n"
        "  rate_limit: {requests_per_minute: 30, wait: 2}\n"
        "  hosts: [api.elevenlabs.io]\n"
    )
    read = [load_policies(load_settings(resilience_file=path)) for path in (toml, yaml)]
    assert (
        read[0]
        == read[1]
        == (
            {},
            {
                "elevenlabs": {
                    "rate_limit": {"requests_per_minute": 30, "wait": 2},
                    "hosts": ["api.elevenlabs.io"],
                }
            },
        )
    )
    with pytest.raises(ConfigurationError, match=r"expected a \.toml, \.yaml or \.yml file"):
        load_policies(load_settings(resilience_file=tmp_path / "policies.json"))


def test_an_unreachable_redis_warns_in_health_and_fails_no_call(
    tmp_path: Path, url: str, service: FlakyService
) -> None:
    settings = load_settings(
        sqlite_path=tmp_path / "wk.db",
        api_keys=[KEY],
        redis_url="redis://127.0.0.1:9/0",  # the discard port: nothing listens
        resilience_policies={"svc": {"retry": {"attempts": 1}}},
    )
    app = FastAPI()

    @app.get("/ask")
    def ask() -> int:
        return watchkeeper.resilient("svc").call(lambda: httpx.get(url, timeout=10).status_code)

    watchkeeper.instrument(app, settings, outbound=False)
    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert [client.get("/ask").json() for _ in range(3)] == [200, 200, 200]

            def state_check() -> dict[str, Any]:
                checks: dict[str, Any] = client.get("/health", headers=AUTH).json()["checks"]
                found: dict[str, Any] = checks.get("resilience-state:probe", [{}])[0]
                return found

            wait_until(lambda: state_check().get("status") == "warn", what="health to warn")
            assert "Redis unreachable" in state_check()["output"]
            assert "127.0.0.1:9" not in state_check()["output"]
            assert client.get("/health/ready").status_code == 200
    finally:
        server.stop()
        set_recorder(None)
