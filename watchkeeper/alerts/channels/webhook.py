"""Webhook: a signed JSON body posted to a URL of the user's.

The body (``version`` 1)::

    {"version": 1, "channel": "ops-hook", "status": "firing", "group_key": "…",
     "alerts": [{"fingerprint": "…", "rule": "error rate high", "severity": "critical",
                 "state": "firing", "summary": "…", "value": 0.12, "threshold": 0.05,
                 "labels": {…}, "annotations": {…}, "started_at": "2026-…Z", "ended_at": null,
                 "dashboard_url": "https://…", "repeat": false, "tier": 0}]}

``status`` is ``firing`` while any alert of the group fires. Headers: ``X-Watchkeeper-Delivery``
(the same on every retry of one delivery, so a receiver can drop repeats) and, when a secret is
set, ``X-Watchkeeper-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256(secret, ``"<t>." + body``). A receiver checks it with :func:`verify_signature`, or
recomputes it over the raw body bytes, compares in constant time, and refuses a ``t`` more than
five minutes old (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence

import orjson

from watchkeeper.alerts.channels.attempts import Scrubber, deliver
from watchkeeper.alerts.channels.http import HttpPoster
from watchkeeper.alerts.channels.options import WebhookOptions
from watchkeeper.alerts.channels.wording import USER_AGENT, group_state, rfc3339
from watchkeeper.alerts.notification import Delivery, Notification

SIGNATURE_HEADER = "X-Watchkeeper-Signature"
DELIVERY_HEADER = "X-Watchkeeper-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300.0
BODY_VERSION = 1


def alert_json(notification: Notification) -> dict[str, object]:
    return {
        "fingerprint": notification.fingerprint,
        "rule": notification.rule,
        "severity": notification.severity.value,
        "state": notification.state.value,
        "summary": notification.summary,
        "value": notification.value,
        "threshold": notification.threshold,
        "labels": dict(notification.labels),
        "annotations": dict(notification.annotations),
        "started_at": rfc3339(notification.started_at),
        "ended_at": None if notification.ended_at is None else rfc3339(notification.ended_at),
        "dashboard_url": notification.dashboard_url,
        "repeat": notification.repeat,
        "tier": notification.tier,
    }


def body_of(channel: str, notifications: Sequence[Notification]) -> bytes:
    return orjson.dumps(
        {
            "version": BODY_VERSION,
            "channel": channel,
            "status": group_state(notifications).value,
            "group_key": notifications[0].group_key if notifications else "",
            "alerts": [alert_json(item) for item in notifications],
        }
    )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` signed at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    tolerance_seconds: float = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (``t=…,v1=…``) signs these exact ``body`` bytes, recently enough."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, value)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or "v1" not in fields:
        return False
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > tolerance_seconds:
        return False
    expected = signature(secret, int(stamp), body)
    return hmac.compare_digest(expected.encode(), f"t={stamp},v1={fields['v1']}".encode())


class WebhookChannel:
    kind = "webhook"

    def __init__(self, name: str, options: WebhookOptions) -> None:
        self._name = name
        self.options = options
        self._poster = HttpPoster(options.timeout_seconds)
        secret = options.secret.get_secret_value() if options.secret else None
        self._scrub = Scrubber.of_url(
            options.url.get_secret_value(),
            [secret, *(value.get_secret_value() for value in options.headers.values())],
        )

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self._name!r}, options={self.options!r})"

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        delivery_id = uuid.uuid4().hex
        url = self.options.url.get_secret_value()
        return await deliver(
            self._name,
            lambda: body_of(self._name, notifications),
            lambda body: self._poster.post(url, body, self._headers(body, delivery_id)),
            self.options.retry_policy(),
            self.options.timeout_seconds,
            self.options.deadline_seconds,
            self._scrub,
        )

    def _headers(self, body: bytes, delivery_id: str) -> dict[str, str]:
        headers = {name: value.get_secret_value() for name, value in self.options.headers.items()}
        headers |= {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: delivery_id,
        }
        if self.options.secret is not None:
            # Signed at each attempt, so a retry after a long backoff is not taken for a replay.
            stamp = int(time.time())
            headers[SIGNATURE_HEADER] = signature(
                self.options.secret.get_secret_value(), stamp, body
            )
        return headers

    async def aclose(self) -> None:
        await self._poster.aclose()
