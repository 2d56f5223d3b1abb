"""The store is down when the app starts: the app serves, health sees, nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy.engine import make_url

import watchkeeper
from tests.support.server import LiveServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.recording.default import set_recorder
from watchkeeper.storage.factory import open_store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 30.0
KEY = "outage-test-key-0123456789abcdef"
AUTHORISED = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


def test_the_app_serves_through_a_store_outage_at_start_up(
    postgres_url: str, postgres_schema: str, proxy: TcpProxy
) -> None:
    proxied = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    settings = load_settings(
        database_url=proxied.render_as_string(hide_password=False),
        database_schema=postgres_schema,
        flush_interval=0.2,
        api_keys=[KEY],
        raise_internal_errors=True,
    )
    app = FastAPI()

    @app.get("/chart/{sign}")
    async def chart(sign: str) -> dict[str, str]:
        with watchkeeper.integration("astrology-api", "chart"):
            if sign == "broken":
                raise HTTPException(502, "the charting service failed")
        return {"sign": sign}

    proxy.cut()  # the store is unreachable before the app even starts
    started = time.monotonic()
    runtime = watchkeeper.instrument(app, settings)
    server = LiveServer(app).start()
    sent = 0
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/chart/leo").status_code == 200
            sent += 1
            for _ in range(20):
                assert client.get("/chart/broken").status_code == 502
                sent += 1

            def integration_failing() -> bool:
                answer = client.get("/health/services/astrology-api", headers=AUTHORISED)
                if answer.status_code == 404:
                    return False  # no figures for it yet
                checks = answer.json()["checks"]
                return any(
                    check["status"] == "fail" for group in checks.values() for check in group
                )

            # Aggregation runs while the store is away: the outage is visible at once.
            wait_until(integration_failing, what="health to see the integration failing")
            ready = client.get("/health/ready", headers=AUTHORISED)
            assert ready.status_code == 200
            store_check = ready.json()["checks"]["store:probe"][0]
            assert store_check["status"] == "warn"
            assert not runtime.stores.is_open
            while time.monotonic() - started < OUTAGE_SECONDS:
                assert client.get("/chart/aries").status_code == 200
                sent += 1
            proxy.restore()
            wait_until(lambda: runtime.stores.is_open, timeout=120, what="the store to open")
            for _ in range(10):
                assert client.get("/chart/virgo").status_code == 200
                sent += 1
            assert runtime.recorder.flush(timeout=120)
    finally:
        server.stop()
        set_recorder(None)
    requests, calls = _stored_counts(postgres_url, postgres_schema)
    assert runtime.recorder.stats().dropped_total == 0
    assert requests == sent
    assert calls == sent


def _stored_counts(postgres_url: str, postgres_schema: str) -> tuple[int, int]:
    """Requests, and calls to the charting integration, in the store."""
    store = open_store(load_settings(database_url=postgres_url, database_schema=postgres_schema))
    try:
        window = TimeRange.last(timedelta(hours=1))
        requests = store.overview(window, Scope.everything(), SpanKind.REQUEST)
        calls = store.overview(window, Scope.everything(), SpanKind.INTEGRATION)
    finally:
        store.close()
    by_name = {summary.name: summary.count for summary in calls}
    return sum(summary.count for summary in requests), by_name.get("astrology-api", 0)
