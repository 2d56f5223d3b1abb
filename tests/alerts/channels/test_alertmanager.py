"""The Alertmanager channel against Debian's real Prometheus Alertmanager: its API v2 shows the
alert firing, then resolved; Alertmanager's own webhook notifies both."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.alerts.channels.conftest import DASHBOARD, notification
from tests.alerts.channels.receivers import Alertmanager, HttpReceiver
from tests.support.waiting import wait_until
from watchkeeper.alerts.channels import build_channel, send_test
from watchkeeper.alerts.channels.alertmanager import label_name, postable_alert
from watchkeeper.alerts.notification import Channel, ChannelSpec, NotificationState

pytestmark = pytest.mark.anyio
RESEND = 60.0


def manager_channel(manager: Alertmanager, **options: object) -> Channel:
    settings = {"url": manager.url, "resend_interval_seconds": RESEND, **options}
    return build_channel(ChannelSpec("ops-am", "alertmanager", settings))


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def ours(manager: Alertmanager) -> list[dict[str, Any]]:
    return [a for a in manager.alerts() if a["labels"].get("alertname") == "error rate high"]


def notified(receiver: HttpReceiver, status: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager's webhook sent with ``status`` (``firing``/``resolved``)."""
    found = []
    for request in list(receiver.received):
        if request.path == "/alertmanager":
            body = json.loads(request.body)
            found += [alert for alert in body["alerts"] if alert["status"] == status]
    return found


async def test_firing_then_resolved_in_alertmanager(
    alertmanager: Alertmanager, receiver: HttpReceiver
) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    firing = notification(started_at=started)
    channel = manager_channel(alertmanager)

    before = datetime.now(UTC)
    delivery = await channel.send([firing])
    assert delivery.delivered, delivery.error
    assert delivery.status == 200

    wait_until(lambda: ours(alertmanager), what="the alert in Alertmanager's API")
    (alert,) = ours(alertmanager)
    assert alert["status"]["state"] == "active"
    assert alert["labels"] == {
        "alertname": "error rate high",
        "severity": "critical",
        "route": "/chat",
    }
    assert alert["annotations"]["summary"] == "Error rate on /chat is 12.5 %"
    assert alert["annotations"]["runbook_url"] == "https://runbooks.example.com/error-rate"
    assert alert["annotations"]["value"] == "0.125"
    assert alert["annotations"]["threshold"] == "0.05"
    assert alert["generatorURL"] == DASHBOARD
    assert parse(alert["startsAt"]) == started
    first_end = parse(alert["endsAt"])
    assert first_end >= before + timedelta(seconds=4 * RESEND - 1)

    wait_until(lambda: notified(receiver, "firing"), what="Alertmanager to notify the firing")

    # Posted again while firing: still one alert, valid for longer.
    again = await channel.send([notification(started_at=started, repeat=True)])
    assert again.delivered, again.error
    wait_until(
        lambda: [a for a in ours(alertmanager) if parse(a["endsAt"]) > first_end],
        what="the re-posted alert's later endsAt",
    )
    assert len(ours(alertmanager)) == 1

    ended = datetime.now(UTC) - timedelta(seconds=1)
    resolved = notification(NotificationState.RESOLVED, started_at=started, ended_at=ended)
    delivery = await channel.send([resolved])
    await channel.aclose()
    assert delivery.delivered, delivery.error

    wait_until(lambda: not ours(alertmanager), what="the alert to leave the active list")
    wait_until(lambda: notified(receiver, "resolved"), what="Alertmanager to notify the end")
    (end,) = notified(receiver, "resolved")
    assert end["labels"]["alertname"] == "error rate high"
    assert parse(end["endsAt"]) == ended.replace(microsecond=ended.microsecond // 1000 * 1000)


async def eventually(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait on the event loop (so the channel's own tasks run) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_firing_alert_is_posted_again_until_it_resolves(
    alertmanager: Alertmanager,
) -> None:
    channel = manager_channel(alertmanager, resend_interval_seconds=1)
    started = datetime.now(UTC) - timedelta(minutes=1)
    assert (await channel.send([notification(started_at=started)])).delivered

    await eventually(lambda: ours(alertmanager), "the alert in Alertmanager")
    first_end = parse(ours(alertmanager)[0]["endsAt"])
    # No second send: the channel itself keeps the alert alive, each post four seconds ahead.
    await eventually(
        lambda: [a for a in ours(alertmanager) if parse(a["endsAt"]) > first_end],
        "the channel to post the firing alert again",
    )

    ended = datetime.now(UTC)
    resolved = notification(NotificationState.RESOLVED, started_at=started, ended_at=ended)
    assert (await channel.send([resolved])).delivered
    await eventually(lambda: not ours(alertmanager), "the alert to resolve")
    keeper = channel._keeper  # type: ignore[attr-defined]
    await eventually(lambda: keeper is None or keeper.done(), "re-posting to stop once resolved")
    await channel.aclose()


async def test_the_test_alert_is_posted_once(alertmanager: Alertmanager) -> None:
    channel = manager_channel(alertmanager, resend_interval_seconds=1)
    assert (await send_test(channel)).delivered
    assert channel._keeper is None  # type: ignore[attr-defined]
    await channel.aclose()


async def test_label_names_alertmanager_refuses_are_rewritten(
    alertmanager: Alertmanager,
) -> None:
    odd = notification(
        rule="slow responses",
        labels={"alertname": "slow responses", "http.route": "/chat", "9lives": "x", "empty": ""},
    )
    channel = manager_channel(alertmanager)
    delivery = await channel.send([odd])
    await channel.aclose()

    assert delivery.delivered, delivery.error
    wait_until(
        lambda: [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "slow responses"],
        what="the alert in Alertmanager",
    )
    (alert,) = [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "slow responses"]
    assert alert["labels"] == {
        "alertname": "slow responses",
        "severity": "critical",
        "http_route": "/chat",
        "_9lives": "x",
    }
    assert label_name("a-b.c") == "a_b_c"


async def test_a_test_alert_reaches_alertmanager(alertmanager: Alertmanager) -> None:
    channel = manager_channel(alertmanager)
    delivery = await send_test(channel)
    await channel.aclose()

    assert delivery.delivered, delivery.error
    wait_until(
        lambda: [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "WatchkeeperTest"],
        what="the test alert",
    )


async def test_alertmanager_refusing_a_post_is_a_failed_delivery(
    alertmanager: Alertmanager,
) -> None:
    channel = manager_channel(alertmanager, url=f"{alertmanager.url}/not-the-api", attempts=3)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 1, 404)


def test_a_resolved_alert_never_ends_before_it_starts() -> None:
    started = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    early = notification(
        NotificationState.RESOLVED, started_at=started, ended_at=started - timedelta(seconds=5)
    )
    alert = postable_alert(early, datetime.now(UTC), timedelta(seconds=RESEND))
    assert alert["endsAt"] == alert["startsAt"] == "2026-12-01T02:00:00.000Z"
