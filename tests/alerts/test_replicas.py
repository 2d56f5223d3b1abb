"""Two app processes and one ``watchkeeper serve`` on one PostgreSQL store: one evaluator, so
one webhook per alert; the evaluator killed (-9), another takes over, nothing lost or repeated."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerts.channels.receivers import HttpReceiver
from tests.alerts.support import circuit, drops
from tests.support.waiting import wait_until
from watchkeeper.alerts.channels.webhook import SIGNATURE_HEADER, verify_signature
from watchkeeper.alerts.model import DeliveryStatus
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import load_settings
from watchkeeper.health.circuits import CircuitState
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
KEY = "replica-test-key-0123456789"
SECRET = "webhook-signing-secret"
LEASE = 4.0
START_SECONDS = 120.0
RULES = {
    "default_rules": False,
    "rules": [
        {
            "name": "Dropping",
            "signal": {"kind": "recorder_drops"},
            "thresholds": {"warning": 0},
            "channels": {"warning": [["hook"]]},
        },
        {
            "name": "CircuitOpen",
            "signal": {"kind": "circuit_state"},
            "comparison": ">=",
            "thresholds": {"critical": 2},
            "channels": {"critical": [["hook"]]},
        },
    ],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/livez", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def processes(environment: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    started: dict[str, subprocess.Popen[bytes]] = {}
    urls = []
    try:
        for name in ("app-1", "app-2"):
            port = _free_port()
            started[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.runtime.served_app:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env={**environment, "WATCHKEEPER_INSTANCE": name},
            )
            urls.append(f"http://127.0.0.1:{port}")
        port = _free_port()
        started["serve"] = subprocess.Popen(
            [str(Path(sys.executable).parent / "watchkeeper"), "serve", "--port", str(port)],
            cwd=ROOT,
            env={**environment, "WATCHKEEPER_INSTANCE": "serve"},
        )
        urls.append(f"http://127.0.0.1:{port}")
        wait_until(lambda: all(_answers(url) for url in urls), START_SECONDS, "the processes")
        yield started
    finally:
        for process in started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


def firing(receiver: HttpReceiver, rule: str) -> list[dict[str, object]]:
    found = []
    for received in receiver.received:
        for alert in json.loads(received.body)["alerts"]:
            if alert["rule"] == rule and alert["state"] == "firing":
                found.append(alert)
    return found


def all_delivered(alerts: AlertStore, count: int) -> bool:
    records = alerts.notifications(100)
    return len(records) == count and all(r.status is DeliveryStatus.DELIVERED for r in records)


def test_one_notification_per_alert_and_the_lease_moves_when_its_holder_dies(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES), encoding="utf-8")
    receiver = HttpReceiver().start()
    channels = {"hook": {"kind": "webhook", "url": f"{receiver.url}/hook", "secret": SECRET}}
    environment = {
        **os.environ,
        "WATCHKEEPER_COLLECTOR": "off",
        "WATCHKEEPER_DATABASE_URL": postgres_url,
        "WATCHKEEPER_DATABASE_SCHEMA": postgres_schema,
        "WATCHKEEPER_API_KEYS": KEY,
        "WATCHKEEPER_ALERT_INTERVAL": "1",
        "WATCHKEEPER_ALERT_LEASE_SECONDS": str(LEASE),
        "WATCHKEEPER_ALERT_RULES_FILE": str(rules),
        "WATCHKEEPER_ALERT_CHANNELS": json.dumps(channels),
    }
    settings = load_settings(database_url=postgres_url, database_schema=postgres_schema)
    try:
        with processes(environment) as started:
            store = open_store(settings)
            assert isinstance(store, SqlStore)
            alerts = AlertStore(store.engine)
            try:
                wait_until(lambda: alerts.lease_holder() is not None, 60, "an evaluator")
                drops(store, time.time(), 2)
                wait_until(lambda: firing(receiver, "Dropping"), 60, "the first webhook")
                wait_until(lambda: all_delivered(alerts, 1), 60, "the delivery recorded")
                lease = alerts.lease_holder()
                assert lease is not None
                holder, _, term = lease
                victim = holder.split(":", 1)[0]
                started[victim].kill()  # -9: no clean release of the lease
                started[victim].wait(30)
                killed_at = time.time()
                circuit(store, time.time(), "openai", CircuitState.OPEN)
                wait_until(lambda: firing(receiver, "CircuitOpen"), 60, "the next webhook")
                moved = alerts.lease_holder()
                assert moved is not None
                assert moved[0].split(":", 1)[0] != victim
                assert moved[2] == term + 1
                # A few more cycles of the new holder: still nothing sent twice.
                wait_until(
                    lambda: all(
                        alert.evaluated_at > killed_at + LEASE + 3 for alert in alerts.open_alerts()
                    ),
                    60,
                    "more evaluations",
                )
                assert all_delivered(alerts, 2)
            finally:
                store.close()
    finally:
        receiver.stop()
    assert len(firing(receiver, "Dropping")) == 1
    assert len(firing(receiver, "CircuitOpen")) == 1
    for received in receiver.received:
        assert verify_signature(SECRET, received.body, received.headers[SIGNATURE_HEADER.lower()])
