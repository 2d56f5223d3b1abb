"""What anyone may read: status only. Figures, outputs and host metrics need the API key; store
errors never show a host, a port or a password, whoever reads them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.health.conftest import API_KEY, instrument, poll, spans
from tests.support.waiting import wait_until
from watchkeeper.config import Settings
from watchkeeper.health.probes import ProbeOutcome
from watchkeeper.health.status import HealthStatus
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import scrub_error, scrub_hosts
from watchkeeper.testing import MemorySink

Serve = Callable[[FastAPI], httpx.Client]
BEARER = {"Authorization": f"Bearer {API_KEY}"}
STORE_ERROR = (
    'connection failed: connection to server at "10.1.2.3", port 5432 failed: '
    "postgresql://watch:hunter2@db.internal:5432/wk refused"
)
STATUS_DOCUMENTS = [
    "/health",
    "/health/live",
    "/livez",
    "/health/ready",
    "/readyz",
    "/health/services",
    "/health/services/openai",
]
FIGURE_KEYS = {"observedValue", "observedUnit", "output"}


def checks_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entries in document["checks"].values() for entry in entries]


@pytest.fixture
def client(recorder: Recorder, serve: Serve) -> httpx.Client:
    recorder.live.observe(spans("openai", 20, errors=10, duration=0.3))
    recorder.live.observe(spans("POST /chat", 30, duration=0.2, kind=SpanKind.REQUEST))
    app = FastAPI()
    runtime = instrument(app, recorder)

    async def failing_store() -> ProbeOutcome:
        return ProbeOutcome(HealthStatus.WARN, STORE_ERROR)

    runtime.probes.register("warehouse", failing_store, interval=0.05, timeout=1.0)
    client = serve(app)
    poll(
        lambda: client.get("/health/services/warehouse", headers=BEARER),
        lambda response: "output" in response.text,
    )
    return client


@pytest.mark.parametrize("path", STATUS_DOCUMENTS)
def test_health_documents_carry_status_only_without_a_key(client: httpx.Client, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-key"}):
        response = client.get(path, headers=headers)
        document = response.json()
        assert document["status"] in ("pass", "warn", "fail"), path
        entries = checks_of(document)
        assert entries, path
        for entry in entries:
            assert entry["status"] in ("pass", "warn", "fail")
            assert not FIGURE_KEYS & set(entry), (path, entry)
        assert "10.1.2.3" not in response.text
        assert "5432" not in response.text


def test_with_the_key_the_documents_are_whole(client: httpx.Client) -> None:
    overall = client.get("/health", headers=BEARER).json()
    assert any("observedValue" in entry for entry in checks_of(overall))
    assert client.get("/health").json()["status"] == overall["status"]
    services = client.get("/health/services/openai", headers={"X-API-Key": API_KEY}).json()
    assert any(entry.get("observedUnit") for entry in checks_of(services))
    live = client.get("/health/live", headers=BEARER).json()
    assert live["checks"]["uptime"][0]["observedValue"] > 0


def test_health_metrics_need_the_key(client: httpx.Client) -> None:
    missing = client.get("/health/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == 401
    assert client.get("/health/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
    shown = client.get("/health/metrics", headers=BEARER)
    assert shown.status_code == 200
    assert shown.json()["windows"]["1m"]["requests"]["count"] == 30


def test_store_errors_are_scrubbed_even_with_the_key(client: httpx.Client) -> None:
    response = client.get("/health/services/warehouse", headers=BEARER)
    (entry,) = checks_of(response.json())
    assert entry["output"].startswith(
        'connection failed: connection to server at "(host)", port (port) failed: '
        "postgresql://watch:***@(host):(port)/wk refused"
    )
    for secret in ("10.1.2.3", "5432", "db.internal", "hunter2"):
        assert secret not in response.text


def test_the_recorders_last_error_is_scrubbed_in_the_metrics(
    make_settings: Callable[..., Settings], serve: Serve
) -> None:
    class Refusing(MemorySink):
        """Fails every write with a PostgreSQL error quoting its host and credentials."""

        def write(self, batch: Batch) -> None:
            raise StoreUnavailable(f"could not write a batch: {STORE_ERROR}")

    with Recorder(make_settings(), sink=Refusing()) as recorder:
        app = FastAPI()
        instrument(app, recorder)
        client = serve(app)
        client.get("/health/live")  # something recorded, so a write is tried and fails
        wait_until(lambda: recorder.stats().last_flush_error, 60, "a failed write")
        response = client.get("/health/metrics", headers=BEARER)
    assert response.status_code == 200
    error = response.json()["recorder"]["last_flush_error"]
    assert error.startswith("StoreUnavailable: could not write a batch: connection failed")
    for secret in ("10.1.2.3", "5432", "db.internal", "hunter2"):
        assert secret not in response.text


def test_without_keys_figures_are_shown_to_nobody(
    make_settings: Callable[..., Settings], sink: MemorySink, serve: Serve
) -> None:
    with Recorder(make_settings(api_keys=[]), sink=sink) as recorder:
        recorder.live.observe(spans("openai", 5))
        app = FastAPI()
        instrument(app, recorder)
        client = serve(app)
        health = client.get("/health")
        metrics = client.get("/health/metrics")
    assert health.status_code == 200
    assert not any(FIGURE_KEYS & set(entry) for entry in checks_of(health.json()))
    assert metrics.status_code == 401


@pytest.mark.parametrize(
    ("raw", "scrubbed"),
    [
        (
            'connection to server at "10.1.2.3", port 5432 failed',
            'connection to server at "(host)", port (port) failed',
        ),
        (
            'connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed',
            'connection to server on socket "(host)" failed',
        ),
        (
            "failed to resolve host 'db.internal': no such host",
            "failed to resolve host '(host)': no such host",
        ),
        (
            'could not translate host name "db.internal" to address',
            'could not translate host name "(host)" to address',
        ),
        ("host=db.internal port=6432 dbname=wk", "host=(host) port=(port) dbname=wk"),
        ("redis://cache.internal:6379/0 refused", "redis://(host):(port)/0 refused"),
        ("dial 192.168.0.4:6543 and [fe80::1]:5432", "dial (host):(port) and (host):(port)"),
        ("OperationalError: database is locked", "OperationalError: database is locked"),
        ("version 1.2.3 of the schema", "version 1.2.3 of the schema"),
    ],
)
def test_scrub_hosts(raw: str, scrubbed: str) -> None:
    assert scrub_hosts(raw) == scrubbed


def test_scrub_error_removes_passwords_and_hosts() -> None:
    assert scrub_error("postgresql://watch:hunter2@10.0.0.9:5432/wk") == (
        "postgresql://watch:***@(host):(port)/wk"
    )
