"""Status from recent traffic, served as application/health+json by a real server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from fastapi import FastAPI

from tests.health.conftest import KEYED, instrument, poll, spans
from watchkeeper.config import Settings
from watchkeeper.health import HEALTH_JSON
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

Serve = Callable[[FastAPI], httpx.Client]


def health_app(recorder: Recorder) -> FastAPI:
    app = FastAPI(version="3.1.0")
    instrument(app, recorder)
    return app


def store_checked(response: httpx.Response) -> bool:
    return bool(response.json()["checks"]["store:probe"][0]["status"] == "pass")


def test_healthy_traffic_passes_with_the_draft_document_shape(
    recorder: Recorder, serve: Serve
) -> None:
    recorder.live.observe(spans("openai", 20))
    client = serve(health_app(recorder))

    response = poll(lambda: client.get("/health", headers=KEYED), store_checked)

    assert response.status_code == 200
    assert response.headers["content-type"] == HEALTH_JSON
    document = response.json()
    assert document["status"] == "pass"
    assert document["version"] == "3.1.0"
    assert document["serviceId"] == "chat-api"
    assert document["description"]
    error_rate = document["checks"]["openai:errorRate"][0]
    assert error_rate["componentId"] == "openai"
    assert error_rate["componentType"] == "component"
    assert error_rate["observedValue"] == 0.0
    assert error_rate["observedUnit"] == "ratio"
    assert error_rate["status"] == "pass"
    assert datetime.fromisoformat(error_rate["time"]).tzinfo is not None
    latency = document["checks"]["openai:responseTime"][0]
    assert 0.04 <= latency["observedValue"] <= 0.06
    assert document["checks"]["store:probe"][0]["componentType"] == "datastore"
    for key in ("uptime", "cpu:utilization", "memory:utilization", "recorder:saturation"):
        assert key in document["checks"], key


def test_an_error_rate_over_the_warning_level_warns_with_200(
    recorder: Recorder, serve: Serve
) -> None:
    recorder.live.observe(spans("openai", 20, errors=2))
    client = serve(health_app(recorder))

    response = poll(lambda: client.get("/health", headers=KEYED), store_checked)

    assert response.status_code == 200
    assert response.headers["content-type"] == HEALTH_JSON
    assert response.json()["status"] == "warn"
    check = response.json()["checks"]["openai:errorRate"][0]
    assert check["status"] == "warn"
    assert check["observedValue"] == 0.1
    assert "2 errors in 20 calls" in check["output"]


def test_an_error_rate_over_the_failure_level_fails_with_503(
    recorder: Recorder, serve: Serve
) -> None:
    recorder.live.observe(spans("openai", 10, errors=5))
    client = serve(health_app(recorder))

    response = poll(lambda: client.get("/health", headers=KEYED), store_checked)

    assert response.status_code == 503
    assert response.headers["content-type"] == HEALTH_JSON
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["openai:errorRate"][0]["status"] == "fail"
    # Liveness is unaffected: a failing integration is no reason to restart the process.
    assert client.get("/health/live", headers=KEYED).status_code == 200


def test_slow_calls_warn_then_fail_on_p95(recorder: Recorder, serve: Serve) -> None:
    recorder.live.observe(spans("anthropic", 10, duration=3.0))
    recorder.live.observe(spans("mistral", 10, duration=12.0))
    client = serve(health_app(recorder))

    response = poll(lambda: client.get("/health", headers=KEYED), store_checked)

    checks = response.json()["checks"]
    assert checks["anthropic:responseTime"][0]["status"] == "warn"
    assert checks["anthropic:errorRate"][0]["status"] == "pass"
    assert checks["mistral:responseTime"][0]["status"] == "fail"
    assert response.status_code == 503


def test_too_little_traffic_is_not_judged(recorder: Recorder, serve: Serve) -> None:
    recorder.live.observe(spans("openai", 4, errors=4, duration=30.0))
    client = serve(health_app(recorder))

    response = poll(lambda: client.get("/health", headers=KEYED), store_checked)

    assert response.status_code == 200
    checks = response.json()["checks"]
    for key in ("openai:errorRate", "openai:responseTime"):
        assert checks[key][0]["status"] == "pass"
        assert "too little traffic to judge" in checks[key][0]["output"]


def test_per_integration_thresholds_override_the_defaults(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve
) -> None:
    settings = make_settings(
        integration_thresholds={"batch-llm": {"warn_p95_seconds": 5, "fail_p95_seconds": 60}}
    )
    with Recorder(settings, sink=sink) as recorder:
        recorder.live.observe(spans("batch-llm", 10, duration=3.0))
        recorder.live.observe(spans("openai", 10, duration=3.0))
        client = serve(health_app(recorder))

        checks = poll(lambda: client.get("/health/services", headers=KEYED), store_checked).json()[
            "checks"
        ]

    assert checks["batch-llm:responseTime"][0]["status"] == "pass"
    assert checks["openai:responseTime"][0]["status"] == "warn"


def test_request_routes_are_judged_only_when_asked(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve
) -> None:
    failing_route = spans("POST /chat", 10, errors=10, kind=SpanKind.REQUEST)
    with Recorder(make_settings(), sink=sink) as quiet:
        quiet.live.observe(failing_route)
        quiet_checks = serve(health_app(quiet)).get("/health", headers=KEYED).json()["checks"]
    with Recorder(make_settings(health_request_checks=True), sink=sink) as judging:
        judging.live.observe(failing_route)
        response = serve(health_app(judging)).get("/health", headers=KEYED)

    assert "POST /chat:errorRate" not in quiet_checks
    assert response.json()["checks"]["POST /chat:errorRate"][0]["status"] == "fail"
    assert response.status_code == 503


def test_services_list_and_one_service(recorder: Recorder, serve: Serve) -> None:
    recorder.live.observe(spans("openai", 10, errors=5))
    recorder.live.observe(spans("anthropic", 10))
    client = serve(health_app(recorder))

    everything = poll(lambda: client.get("/health/services", headers=KEYED), store_checked)
    one = client.get("/health/services/anthropic", headers=KEYED)

    assert everything.status_code == 503
    assert {"openai:errorRate", "anthropic:errorRate", "store:probe"} <= set(
        everything.json()["checks"]
    )
    assert one.status_code == 200
    assert one.headers["content-type"] == HEALTH_JSON
    assert set(one.json()["checks"]) == {"anthropic:errorRate", "anthropic:responseTime"}
    assert one.json()["status"] == "pass"


def test_an_unknown_service_is_a_404_listing_the_known_ones(
    recorder: Recorder, serve: Serve
) -> None:
    recorder.live.observe(spans("openai", 10))
    client = serve(health_app(recorder))

    response = client.get("/health/services/claude", headers=KEYED)

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == 404
    assert error["known"] == ["openai", "store"]
    assert "'claude'" in error["message"]
    assert "openai, store" in error["message"]
