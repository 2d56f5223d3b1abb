"""The webhook channel against a real HTTP server on 127.0.0.1: the body, its signature checked
as the README tells receivers to, retries, Retry-After, deadlines, and secrets kept out."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.alerts.channels.conftest import DASHBOARD, notification
from tests.alerts.channels.receivers import HttpReceiver, Reply
from tests.support.phoenix import free_port
from watchkeeper.alerts.channels import build_channel, shown_options
from watchkeeper.alerts.channels.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    signature,
    verify_signature,
)
from watchkeeper.alerts.notification import Channel, ChannelSpec, NotificationState
from watchkeeper.config import load_settings
from watchkeeper.instrumentation.httpx import instrument_httpx, uninstrument_httpx
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import REDACTED
from watchkeeper.testing import MemorySink

SECRET = "whsec-5f3a9c1e-signing-key"
TOKEN = "tok-8d1f2e7c9b"
FAST = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05}

pytestmark = pytest.mark.anyio


def webhook(receiver: HttpReceiver, **options: object) -> Channel:
    settings: dict[str, object] = {
        "url": f"{receiver.url}/hooks/{TOKEN}",
        "secret": SECRET,
        "headers": {"Authorization": "Bearer header-secret-77"},
        **FAST,
    }
    settings.update(options)
    return build_channel(ChannelSpec("ops-hook", "webhook", settings))


async def test_a_firing_alert_arrives_signed_in_the_documented_shape(
    receiver: HttpReceiver,
) -> None:
    channel = webhook(receiver)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered, delivery.error
    assert (delivery.channel, delivery.attempts, delivery.status) == ("ops-hook", 1, 200)
    (request,) = receiver.received
    assert request.path == f"/hooks/{TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer header-secret-77"
    assert request.headers["user-agent"].startswith("Watchkeeper/")
    assert len(request.headers[DELIVERY_HEADER.lower()]) == 32
    assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER.lower()])
    body = json.loads(request.body)
    assert body == {
        "version": 1,
        "channel": "ops-hook",
        "status": "firing",
        "group_key": "group-1",
        "alerts": [
            {
                "fingerprint": "fp-1",
                "rule": "error rate high",
                "severity": "critical",
                "state": "firing",
                "summary": "Error rate on /chat is 12.5 %",
                "value": 0.125,
                "threshold": 0.05,
                "labels": {
                    "alertname": "error rate high",
                    "severity": "critical",
                    "route": "/chat",
                },
                "annotations": {
                    "summary": "Error rate on /chat is 12.5 %",
                    "description": "More than 5 % of requests to /chat fail.",
                    "runbook_url": "https://runbooks.example.com/error-rate",
                },
                "started_at": "2026-12-01T02:00:00.000Z",
                "ended_at": None,
                "dashboard_url": DASHBOARD,
                "repeat": False,
                "tier": 0,
            }
        ],
    }


async def test_a_resolved_alert_says_so_and_when(receiver: HttpReceiver) -> None:
    channel = webhook(receiver)
    delivery = await channel.send([notification(NotificationState.RESOLVED)])
    await channel.aclose()

    assert delivery.delivered
    body = json.loads(receiver.received[0].body)
    assert body["status"] == "resolved"
    assert body["alerts"][0]["state"] == "resolved"
    assert body["alerts"][0]["ended_at"] == "2026-12-01T02:07:00.000Z"


def test_a_signature_holds_only_for_its_body_secret_and_time() -> None:
    body = b'{"version":1}'
    now = time.time()
    header = signature(SECRET, int(now), body)
    assert verify_signature(SECRET, body, header, now=now)
    assert not verify_signature(SECRET, body + b" ", header, now=now)
    assert not verify_signature("another-secret", body, header, now=now)
    assert not verify_signature(SECRET, body, header, now=now + 301)  # a replay, too late
    assert not verify_signature(SECRET, body, header.replace("t=", "t=1"), now=now)
    assert not verify_signature(SECRET, body, "v1=abc", now=now)


async def test_without_a_secret_nothing_is_signed(receiver: HttpReceiver) -> None:
    channel = webhook(receiver, secret=None)
    assert (await channel.send([notification()])).delivered
    await channel.aclose()
    assert SIGNATURE_HEADER.lower() not in receiver.received[0].headers


async def test_server_errors_are_retried_with_the_same_delivery_id(receiver: HttpReceiver) -> None:
    receiver.plan(Reply(500, "busy"), Reply(502, "bad gateway"))
    channel = webhook(receiver, attempts=3)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered
    assert delivery.attempts == 3
    ids = {request.headers[DELIVERY_HEADER.lower()] for request in receiver.received}
    assert len(receiver.received) == 3
    assert len(ids) == 1
    for request in receiver.received:  # each attempt signed afresh, each signature valid
        assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER.lower()])


async def test_spent_attempts_give_a_failed_delivery_with_the_last_error(
    receiver: HttpReceiver,
) -> None:
    receiver.plan(*[Reply(503, "down for maintenance")] * 2)
    channel = webhook(receiver, attempts=2)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert not delivery.delivered
    assert delivery.attempts == 2
    assert delivery.status == 503
    assert delivery.error == "status 503: down for maintenance"


async def test_a_refusal_is_not_repeated(receiver: HttpReceiver) -> None:
    receiver.plan(Reply(400, "bad payload"))
    channel = webhook(receiver, attempts=3)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 1, 400)
    assert len(receiver.received) == 1


async def test_a_429_waits_for_retry_after(receiver: HttpReceiver) -> None:
    receiver.plan(Reply(429, "slow down", {"Retry-After": "1"}))
    channel = webhook(receiver, attempts=2, backoff_seconds=0.001)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered
    assert delivery.attempts == 2
    first, second = receiver.received
    assert second.at - first.at >= 0.9  # Retry-After, not the millisecond backoff


async def test_a_retry_after_beyond_the_cap_fails_at_once(receiver: HttpReceiver) -> None:
    receiver.plan(Reply(429, "slow down", {"Retry-After": "3600"}))
    channel = webhook(receiver, attempts=3, retry_after_cap_seconds=5)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 1, 429)
    assert delivery.details == {"retry_after_seconds": "3600"}


async def test_a_receiver_that_does_not_answer_is_cut_at_the_timeout(
    receiver: HttpReceiver,
) -> None:
    receiver.plan(Reply(delay=30), Reply(delay=30))
    channel = webhook(receiver, attempts=2, timeout_seconds=0.5)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert not delivery.delivered
    assert delivery.attempts == 2
    assert delivery.status is None
    assert delivery.error
    assert len(receiver.received) == 2


async def test_an_unreachable_receiver_is_a_failed_delivery() -> None:
    spec = ChannelSpec(
        "ops-hook",
        "webhook",
        {"url": f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}", "attempts": 2, **FAST},
    )
    channel = build_channel(spec)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert not delivery.delivered
    assert delivery.attempts == 2
    assert delivery.error is not None
    assert delivery.error.startswith("ConnectError")


async def test_secrets_stay_out_of_errors_reprs_and_shown_options(
    receiver: HttpReceiver,
) -> None:
    # A receiver that echoes what it was sent, secrets included, in its error.
    receiver.plan(Reply(404, f"no hook at /hooks/{TOKEN} for {SECRET}"))
    channel = webhook(receiver, attempts=1)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.error == f"status 404: no hook at {REDACTED} for {REDACTED}"
    shown = shown_options(channel)
    assert shown["url"] == shown["secret"] == REDACTED
    assert shown["headers"] == {"Authorization": REDACTED}
    for text in (repr(channel), json.dumps(shown), str(delivery)):
        for secret in (TOKEN, SECRET, "header-secret-77"):
            assert secret not in text


async def test_a_delivery_ends_within_its_deadline_whatever_the_attempts(
    receiver: HttpReceiver,
) -> None:
    receiver.plan(Reply(delay=30), Reply(delay=30), Reply(delay=30))
    channel = webhook(receiver, attempts=3, timeout_seconds=10, deadline_seconds=0.5)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.error is not None
    assert delivery.error.startswith("no answer within 0.")


async def test_a_retry_after_past_the_deadline_is_not_waited_for(receiver: HttpReceiver) -> None:
    receiver.plan(Reply(503, "busy", {"Retry-After": "20"}))
    channel = webhook(receiver, attempts=3, deadline_seconds=5)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 1, 503)
    assert delivery.details == {"retry_after_seconds": "20"}


async def test_a_notification_is_not_recorded_as_one_of_the_apps_calls(
    receiver: HttpReceiver,
) -> None:
    """Where the app's httpx calls are recorded, Watchkeeper's own posts are not among them and
    carry no traceparent of the app's."""
    sink = MemorySink()
    recorder = Recorder(load_settings(), sink=sink).start()
    instrument_httpx(recorder)
    try:
        async with httpx.AsyncClient() as client:  # one of the app's own calls, for contrast
            await client.post(f"{receiver.url}/app-call", content=b"{}")
        channel = webhook(receiver)
        delivery = await channel.send([notification()])
        await channel.aclose()
        assert recorder.flush(30)
    finally:
        uninstrument_httpx()
        recorder.stop()
    assert delivery.delivered, delivery.error
    app_call, alert = receiver.received
    assert "traceparent" in app_call.headers
    assert "traceparent" not in alert.headers
    assert [span.operation for span in sink.spans()] == ["POST /app-call"]
