"""Configuration, liveness, metrics, uptime and event-loop lag endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import psutil
import pytest
from fastapi import FastAPI

from tests.health.conftest import API_KEY, KEYED, WAIT_SECONDS, instrument, poll, spans
from watchkeeper.config import Settings
from watchkeeper.health import HEALTH_JSON
from watchkeeper.model.events import MetricKind, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

Serve = Callable[[FastAPI], httpx.Client]
DB_PASSWORD = "hunter2-db-password"


def test_configuration_requires_the_key_and_never_shows_a_secret(
    monkeypatch: pytest.MonkeyPatch,
    make_settings: Callable[..., Settings],
    sink: MemorySink,
    serve: Serve,
) -> None:
    monkeypatch.setenv(
        "WATCHKEEPER_DATABASE_URL", f"postgresql://watch:{DB_PASSWORD}@db.internal:5432/wk"
    )
    settings = make_settings(redact_fields=["customer_email"])
    with Recorder(settings, sink=sink) as recorder:
        app = FastAPI()
        instrument(app, recorder)
        client = serve(app)

        missing = client.get("/health/configuration")
        wrong = client.get("/health/configuration", headers={"X-API-Key": "not-the-key"})
        shown = client.get("/health/configuration", headers={"Authorization": f"Bearer {API_KEY}"})

    assert missing.status_code == 401
    assert "API key is required" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert shown.status_code == 200
    assert API_KEY not in shown.text
    assert DB_PASSWORD not in shown.text
    configuration = shown.json()
    assert configuration["database_url"] == "***"
    assert configuration["api_keys"] == ["***"]
    assert configuration["service"] == "chat-api"
    assert configuration["max_live_keys"] == settings.max_live_keys
    assert configuration["redact_fields"] == ["customer_email"]
    assert configuration["health_fail_error_rate"] == 0.25


def test_configuration_can_be_left_unprotected(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve
) -> None:
    with Recorder(make_settings(protect_configuration=False), sink=sink) as recorder:
        app = FastAPI()
        instrument(app, recorder)
        response = serve(app).get("/health/configuration")

    assert response.status_code == 200
    assert response.json()["api_keys"] == ["***"]
    assert API_KEY not in response.text


def test_liveness_and_kubernetes_aliases(recorder: Recorder, serve: Serve) -> None:
    recorder.live.observe(spans("openai", 10, errors=10))
    app = FastAPI()
    instrument(app, recorder, prefix="/ops")
    client = serve(app)

    for path in ("/ops/health/live", "/ops/livez", "/health/live", "/livez"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == HEALTH_JSON
        assert response.json()["status"] == "pass"
    assert client.get("/ops/health", headers=KEYED).status_code == 503
    # Under the runtime's prefix, not the default one; the root paths stay for load balancers.
    assert client.get("/health", headers=KEYED).status_code == 503
    assert client.get("/watchkeeper/health/live").status_code == 404


def test_uptime_counts_from_the_process_start(recorder: Recorder, serve: Serve) -> None:
    app = FastAPI()
    instrument(app, recorder)
    client = serve(app)
    process_age = time.time() - psutil.Process().create_time()

    live_uptime = client.get("/health/live", headers=KEYED).json()["checks"]["uptime"][0]
    metrics = client.get("/health/metrics", headers=KEYED).json()

    assert live_uptime["observedValue"] >= process_age
    assert live_uptime["observedUnit"] == "s"
    assert metrics["uptime_seconds"] >= process_age


def test_event_loop_lag_is_measured_and_published(
    recorder: Recorder, sink: MemorySink, serve: Serve
) -> None:
    app = FastAPI()
    instrument(app, recorder)

    @app.get("/stall")
    async def stall() -> dict[str, bool]:
        # Blocking on purpose. The monitor sees the overshoot of its 0.5 s sleep, so a stall of
        # S seconds shows as at least S - 0.5 s wherever it falls in the sleep.
        time.sleep(1.0)
        return {"stalled": True}

    client = serve(app)

    def lag_measured(response: httpx.Response) -> bool:
        return response.json()["system"]["event_loop_lag_seconds"] is not None

    poll(lambda: client.get("/health/metrics", headers=KEYED), lag_measured)
    assert "eventLoop:lag" in client.get("/health", headers=KEYED).json()["checks"]

    client.get("/stall")

    def lag_gauges() -> list[float]:
        recorder.flush(WAIT_SECONDS)
        return [
            point.value
            for point in sink.metrics
            if point.name == "system.event_loop_lag_seconds" and point.kind is MetricKind.GAUGE
        ]

    deadline = time.monotonic() + WAIT_SECONDS
    while max(lag_gauges(), default=0.0) < 0.4:
        if time.monotonic() > deadline:
            pytest.fail(f"a 1 s stall was not seen as lag; gauges: {lag_gauges()}")
        time.sleep(0.05)


def test_system_samples_are_stored_as_gauges(
    recorder: Recorder, sink: MemorySink, serve: Serve
) -> None:
    app = FastAPI()
    instrument(app, recorder)
    serve(app)
    wanted = {
        "system.cpu_percent",
        "system.memory_used_bytes",
        "system.memory_available_bytes",
        "system.disk_percent",
        "system.process_rss_bytes",
        "system.threads",
        "system.uptime_seconds",
        "system.net_sent_bytes_per_second",
    }

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        recorder.flush(WAIT_SECONDS)
        names = {point.name for point in sink.metrics if point.kind is MetricKind.GAUGE}
        if wanted <= names:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"missing gauges: {sorted(wanted - names)}")
        time.sleep(0.05)
    rss = [point.value for point in sink.metrics if point.name == "system.process_rss_bytes"]
    assert rss[-1] > 1_000_000


def test_metrics_give_headline_figures(recorder: Recorder, serve: Serve) -> None:
    recorder.live.observe(spans("POST /chat", 30, errors=3, duration=0.2, kind=SpanKind.REQUEST))
    recorder.live.observe(spans("openai", 12, errors=0, duration=0.8))
    app = FastAPI()
    instrument(app, recorder)
    client = serve(app)

    metrics = poll(
        lambda: client.get("/health/metrics", headers=KEYED),
        lambda response: response.status_code == 200,
    ).json()

    assert set(metrics["windows"]) == {"1m", "5m", "15m"}
    minute = metrics["windows"]["1m"]
    assert minute["requests"]["count"] == 30
    assert minute["requests"]["errors"] == 3
    assert minute["requests"]["error_rate"] == 0.1
    assert minute["requests"]["per_second"] == 0.5
    route = minute["requests"]["busiest"][0]
    assert route["name"] == "POST /chat"
    assert 0.19 <= route["p50_seconds"] <= 0.21
    assert route["p95_seconds"] is not None
    assert route["p99_seconds"] is not None
    assert minute["integrations"]["count"] == 12
    assert metrics["windows"]["15m"]["requests"]["per_second"] == round(30 / 900, 4)
    assert metrics["recorder"]["buffer_capacity"] == recorder.settings.buffer_size
    assert "dropped_total" in metrics["recorder"]
    system = metrics["system"]
    assert system["process_rss_bytes"] > 0
    assert system["threads"] >= 1
    assert system["memory_available_bytes"] > 0
    assert system["disk_path"]
