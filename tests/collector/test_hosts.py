"""Two app hosts on one PostgreSQL: each host's collector writes, one `serve` shows both."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.collector.test_processes import KEY, _metrics, _requests_counted, running_app
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app

pytestmark = pytest.mark.slow


def _send(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"}) as client:
        for number in range(count):
            assert client.get(f"/api/v1/work/{number}").status_code == 200


def _counted(url: str) -> float:
    return _requests_counted(_metrics(url))


def test_two_hosts_write_one_postgresql_and_one_dashboard_shows_both(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    database = postgres_url
    store = {"WATCHKEEPER_DATABASE_URL": database, "WATCHKEEPER_DATABASE_SCHEMA": postgres_schema}
    # Two process groups with collector folders of their own: two hosts, as far as they know.
    with (
        running_app(tmp_path / "a", workers=2, **store) as host_a,
        running_app(tmp_path / "b", workers=2, **store) as host_b,
    ):
        senders = [
            threading.Thread(target=_send, args=(host_a.url, 60)),
            threading.Thread(target=_send, args=(host_b.url, 40)),
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        # Each host's view is its own collector's: it counts only that host's requests.
        wait_until(lambda: _counted(host_a.url) == 60, 120, "host a's collector to count")
        wait_until(lambda: _counted(host_b.url) == 40, 120, "host b's collector to count")
        first_collectors = {host_a.collector_pid(), host_b.collector_pid()}
    assert None not in first_collectors
    assert len(first_collectors) == 2  # one collector per host
    wait_until(lambda: host_a.collector_pid() is None, 120, "host a's collector to leave")
    wait_until(lambda: host_b.collector_pid() is None, 120, "host b's collector to leave")

    settings = load_settings(database_url=database, database_schema=postgres_schema, api_keys=[KEY])
    dashboard = LiveServer(create_app(settings)).start()
    try:
        routes = httpx.get(
            dashboard.url + "/api/v1/routes",
            params={"range": "1h"},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )
        routes.raise_for_status()
        page = httpx.get(dashboard.url + "/", timeout=60)
    finally:
        dashboard.stop()
    by_name = {route["name"]: route for route in routes.json()}
    assert by_name["GET /api/v1/work/{number}"]["count"] == 100
    assert page.status_code == 200
