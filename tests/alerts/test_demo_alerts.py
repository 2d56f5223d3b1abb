"""End to end with the demo: its speech outage fires "integration down", its low-relevance
answers fire the relevance rule, webhooks arrive, acknowledging stops the relevance alert's
repeats while the outage's keep coming, and the recovery resolves the outage's alert."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.channels.receivers import HttpReceiver
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.demo.app import build_app
from watchkeeper.demo.services import FaultSchedule
from watchkeeper.demo.traffic import TrafficStats, drive
from watchkeeper.testing.fake_ai import FakeAIServer

pytestmark = pytest.mark.slow

KEY = "demo-alerts-key-0123456789"
OUTAGE_SECONDS = 40.0
RULES = {
    "default_rules": False,
    "rules": [
        {
            "name": "IntegrationDown",
            "signal": {"kind": "integration_health", "integration": "elevenlabs"},
            "window_seconds": 60,
            "comparison": ">=",
            "thresholds": {"critical": 2},
            "repeat_seconds": 10,
            "channels": {"critical": [["hook"]]},
        },
        {
            "name": "RelevanceLow",
            "signal": {
                "kind": "validation_failure_rate",
                "validator": "minimum_score",
                "target": "pinecone",
                "min_count": 10,
            },
            "window_seconds": 300,
            "thresholds": {"warning": 0.05},
            "repeat_seconds": 10,
            "channels": {"warning": [["hook"]]},
        },
    ],
}


@contextlib.contextmanager
def traffic(url: str) -> Iterator[TrafficStats]:
    """The demo's simulated users, on a loop of their own, stopped with every session ended."""
    stats = TrafficStats()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        driving = asyncio.create_task(drive(url, 8.0, None, stats))
        await stop.wait()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(driving, *others, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),))
    thread.start()
    try:
        yield stats
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()


def notifications(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [alert for got in receiver.received for alert in json.loads(got.body)["alerts"]]


def of(receiver: HttpReceiver, rule: str, state: str) -> list[dict[str, Any]]:
    return [n for n in notifications(receiver) if n["rule"] == rule and n["state"] == state]


def notified(receiver: HttpReceiver, alert: dict[str, Any]) -> list[dict[str, Any]]:
    """The firing notifications of one alert (its rule's later alerts start later)."""
    fired_at = datetime.fromisoformat(alert["fired_at"])
    return [
        n
        for n in of(receiver, alert["rule"], "firing")
        if abs(datetime.fromisoformat(n["started_at"]) - fired_at) < timedelta(milliseconds=1)
    ]


def repeats_of_outage(receiver: HttpReceiver, count: int) -> None:
    seen = len(of(receiver, "IntegrationDown", "firing")) + count
    wait_until(
        lambda: len(of(receiver, "IntegrationDown", "firing")) >= seen,
        120,
        f"{count} more repeat(s) of the outage's alert",
    )


def test_the_demo_s_outage_and_bad_answers_alert_and_its_recovery_resolves(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES), encoding="utf-8")
    receiver = HttpReceiver().start()
    channels = {"hook": {"kind": "webhook", "url": f"{receiver.url}/hook"}}
    settings = load_settings(
        sqlite_path=tmp_path / "demo.db",
        api_keys=[KEY],
        collector="off",
        service="guidance-demo",
        alert_interval=1.0,
        alert_rules_file=rules,
        alert_channels=json.dumps(channels),
    )
    llm = FakeAIServer(seed=3, latency=0.02, token_interval=0.001, output_tokens=20)
    llm.start()
    # The speech service is down for the first 40 s of a long cycle, then answers again.
    schedule = FaultSchedule(cycle_seconds=1000.0, flaky=(0.9, 0.9), outage=(0.0, 0.04))
    app, _ = build_app(settings, llm.openai_base_url, schedule)
    server = LiveServer(app).start()
    api = httpx.Client(base_url=f"{server.url}/watchkeeper", headers={"X-API-Key": KEY})
    try:
        with traffic(server.url):
            wait_until(lambda: of(receiver, "IntegrationDown", "firing"), 120, "integration down")
            wait_until(lambda: of(receiver, "RelevanceLow", "firing"), 120, "relevance alert")
            (down,) = of(receiver, "IntegrationDown", "firing")[:1]
            assert down["labels"]["integration"] == "elevenlabs"
            assert down["severity"] == "critical"
            active = api.get("/api/v1/alerts").json()["alerts"]
            (relevance,) = [a for a in active if a["rule"] == "RelevanceLow"]
            acked = api.post(f"/api/v1/alerts/{relevance['id']}/ack", json={"by": "ana"})
            assert acked.status_code == 200
            # One repeat of the outage's alert first: an evaluation already under way when
            # the acknowledgement landed has then delivered whatever it sent with it.
            repeats_of_outage(receiver, 1)
            after_ack = len(notified(receiver, relevance))
            # The outage's alert, unacknowledged, repeats every 10 s; the acknowledged one
            # does not, over the same time. (The demo's random answers may resolve it and
            # fire a new alert of the same rule; that one is not acknowledged.)
            repeats_of_outage(receiver, 2)
            assert len(notified(receiver, relevance)) == after_ack
            wait_until(lambda: of(receiver, "IntegrationDown", "resolved"), 240, "the recovery")
            (resolved,) = of(receiver, "IntegrationDown", "resolved")
            assert resolved["ended_at"] is not None
            history = api.get("/api/v1/alerts/history").json()["alerts"]
            assert any(a["rule"] == "IntegrationDown" and a["state"] == "resolved" for a in history)
    finally:
        api.close()
        server.stop()
        llm.stop()
        receiver.stop()
