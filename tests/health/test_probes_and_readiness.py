"""Probes run in the background; readiness reflects the store, the recorder and requirements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.health.conftest import API_KEY, KEYED, instrument, own_app, poll, spans
from watchkeeper.config import Settings
from watchkeeper.health import (
    HEALTH_JSON,
    ComponentType,
    HealthStatus,
    ProbeOutcome,
    ProbeRegistry,
    SystemSampler,
    register_store_probe,
)
from watchkeeper.recording.recorder import Recorder
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.testing import MemorySink

Serve = Callable[[FastAPI], httpx.Client]


def probe_check(response: httpx.Response, name: str) -> dict[str, object]:
    check: dict[str, object] = response.json()["checks"][f"{name}:probe"][0]
    return check


def test_a_hung_probe_never_holds_up_health(recorder: Recorder, serve: Serve) -> None:
    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    app = FastAPI()
    probes = instrument(app, recorder).probes
    probes.register("vector-db", hangs, interval=30.0, timeout=1.5)
    client = serve(app)

    started = time.monotonic()
    first = client.get("/health", headers=KEYED)
    assert time.monotonic() - started < 0.5
    assert probe_check(first, "vector-db")["status"] == "warn"
    assert probe_check(first, "vector-db")["output"] == "not checked yet"

    def timed_out(response: httpx.Response) -> bool:
        return probe_check(response, "vector-db")["status"] == "fail"

    def quick_get() -> httpx.Response:
        asked = time.monotonic()
        response = client.get("/health", headers=KEYED)
        assert time.monotonic() - asked < 0.5, "/health waited for a probe"
        return response

    failed = poll(quick_get, timed_out)
    assert failed.status_code == 503
    output = str(probe_check(failed, "vector-db")["output"])
    assert output.startswith("timed out after 1.5s")
    assert "checked" in output
    assert "ago" in output


def test_probe_results_carry_outcomes_and_errors(recorder: Recorder, serve: Serve) -> None:
    async def degraded() -> ProbeOutcome:
        return ProbeOutcome(HealthStatus.WARN, "replica lagging", 42, "s")

    async def broken() -> None:
        raise ConnectionError("cannot reach redis://:s3cret-pass@cache:6379/0")

    async def refuses() -> bool:
        return False

    app = FastAPI()
    probes = instrument(app, recorder).probes
    probes.register("replica", degraded, interval=0.2)
    probes.register("cache", broken, interval=0.2)
    probes.register("search", refuses, interval=0.2)
    client = serve(app)

    def all_ran(response: httpx.Response) -> bool:
        names = ("replica", "cache", "search", "store")
        return all(probe_check(response, name)["output"] != "not checked yet" for name in names)

    response = poll(lambda: client.get("/health", headers=KEYED), all_ran)

    replica = probe_check(response, "replica")
    assert replica["status"] == "warn"
    assert replica["observedValue"] == 42
    assert str(replica["output"]).startswith("replica lagging; checked")
    cache = probe_check(response, "cache")
    assert cache["status"] == "fail"
    assert "ConnectionError" in str(cache["output"])
    assert "s3cret-pass" not in response.text
    assert probe_check(response, "search")["status"] == "fail"
    # None of these is required, so the app stays ready.
    assert client.get("/health/ready", headers=KEYED).status_code == 200


def test_store_down_warns_but_keeps_the_app_ready_and_recovers(
    recorder: Recorder, sink: MemorySink, serve: Serve
) -> None:
    probes = ProbeRegistry()
    register_store_probe(probes, recorder, interval=0.1, timeout=1.0)
    client = serve(own_app(Runtime(recorder=recorder, probes=probes)))

    def store_is(status: str) -> Callable[[httpx.Response], bool]:
        return lambda response: probe_check(response, "store")["status"] == status

    poll(lambda: client.get("/health/ready", headers=KEYED), store_is("pass"))

    sink.fail = True
    down = poll(lambda: client.get("/health/ready", headers=KEYED), store_is("warn"))

    # Recording buffers and retries meanwhile: Watchkeeper's own store is no reason to take
    # the app out of its load balancer, so readiness warns and still answers 200.
    assert down.status_code == 200
    assert down.headers["content-type"] == HEALTH_JSON
    assert down.json()["status"] == "warn"
    store = probe_check(down, "store")
    assert store["componentType"] == "datastore"
    assert "StoreUnavailable" in str(store["output"])
    assert client.get("/readyz", headers=KEYED).status_code == 200
    assert client.get("/livez", headers=KEYED).status_code == 200

    sink.fail = False
    poll(lambda: client.get("/readyz", headers=KEYED), store_is("pass"))


def test_a_required_probe_down_fails_readiness_and_recovers(
    recorder: Recorder, serve: Serve
) -> None:
    reachable = True

    async def database() -> bool:
        return reachable

    app = FastAPI()
    instrument(app, recorder).probes.register(
        "database",
        database,
        interval=0.1,
        timeout=1.0,
        required=True,
        component_type=ComponentType.DATASTORE,
    )
    client = serve(app)

    def database_is(status: str) -> Callable[[httpx.Response], bool]:
        return lambda response: probe_check(response, "database")["status"] == status

    poll(lambda: client.get("/health/ready", headers=KEYED), database_is("pass"))

    reachable = False
    down = poll(
        lambda: client.get("/health/ready", headers=KEYED),
        lambda response: response.status_code == 503,
    )

    assert down.headers["content-type"] == HEALTH_JSON
    assert down.json()["status"] == "fail"
    database_check = probe_check(down, "database")
    assert database_check["status"] == "fail"
    assert database_check["componentType"] == "datastore"
    assert client.get("/readyz", headers=KEYED).status_code == 503
    assert client.get("/livez", headers=KEYED).status_code == 200

    reachable = True
    poll(lambda: client.get("/readyz", headers=KEYED), lambda response: response.status_code == 200)


def test_required_integrations_decide_readiness(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve
) -> None:
    settings = make_settings(required_integrations=["openai", "embeddings"])
    with Recorder(settings, sink=sink) as recorder:
        recorder.live.observe(spans("anthropic", 10, errors=10))
        app = FastAPI()
        instrument(app, recorder)
        client = serve(app)

        def store_checked(response: httpx.Response) -> bool:
            return probe_check(response, "store")["status"] == "pass"

        ready = poll(lambda: client.get("/health/ready", headers=KEYED), store_checked)
        # anthropic fails but is not required; embeddings has had no calls yet.
        assert ready.status_code == 200
        assert ready.json()["checks"]["embeddings:required"][0]["output"] == (
            "no calls in the last 5 min"
        )
        assert "anthropic:errorRate" not in ready.json()["checks"]

        recorder.live.observe(spans("openai", 10, errors=4))
        not_ready = client.get("/health/ready", headers=KEYED)

    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["openai:errorRate"][0]["status"] == "fail"


@pytest.mark.parametrize("opted_in", [False, True], ids=["by default", "opted in"])
def test_a_saturated_recorder_warns_and_fails_readiness_only_when_asked(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve, opted_in: bool
) -> None:
    settings = make_settings(buffer_size=100, batch_size=10, readiness_includes_monitoring=opted_in)
    # Not started, so nothing drains the buffer; no gauges, so only this test fills it.
    recorder = Recorder(settings, sink=sink)
    sampler = SystemSampler(recorder, settings, publish_gauges=False)
    runtime = Runtime(recorder=recorder, sampler=sampler)
    # Watchkeeper's application served without starting the runtime, which would start the
    # recorder: only the recorder's own buffer is read here.
    client = serve(runtime.app)

    for _ in range(92):
        recorder.metric("queued", 1.0)
    # With a key: figures, not only statuses.
    key = {"Authorization": f"Bearer {API_KEY}"}
    warned = client.get("/health/ready", headers=key)
    saturation = warned.json()["checks"]["recorder:saturation"][0]
    assert warned.status_code == 200
    assert saturation["status"] == "warn"
    assert saturation["observedValue"] == 92.0

    for _ in range(10):
        recorder.metric("queued", 1.0)
    assert recorder.stats().dropped_total == 2
    full = client.get("/health/ready", headers=key)
    check = full.json()["checks"]["recorder:saturation"][0]
    assert check["output"] == "buffer full and events dropped in the last minute"
    # Watchkeeper's own trouble takes the app out of rotation only if its operator says so.
    assert (full.status_code, check["status"]) == ((503, "fail") if opted_in else (200, "warn"))
