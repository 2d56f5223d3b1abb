"""Prometheus Alertmanager: alerts posted to its API v2 (``POST /api/v2/alerts``), as Prometheus
does.

Alertmanager identifies an alert by its label set (``alertname`` is the rule, ``severity`` its
level, then the rule's labels; names Alertmanager refuses are rewritten to ``[a-zA-Z0-9_]``), and
routes, groups, silences and repeats it itself. A firing alert is posted with ``endsAt`` four
:attr:`~AlertmanagerOptions.resend_interval_seconds` ahead (Prometheus's rule), and the channel
posts it again every interval until it is sent resolved, whatever the rule's repeat interval or
an acknowledgement (Alertmanager has its own silences): if Watchkeeper stops, Alertmanager
resolves the alert by itself instead of keeping it firing for ever. A resolved alert is posted
with ``endsAt`` at the time it resolved, which Alertmanager notifies as resolved. ``generatorURL``
links back to the dashboard; the value and threshold are annotations, which may change without
making a new alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from watchkeeper.alerts.channels.attempts import Scrubber, deliver
from watchkeeper.alerts.channels.http import HttpPoster
from watchkeeper.alerts.channels.options import AlertmanagerOptions
from watchkeeper.alerts.channels.wording import TEST_GROUP_KEY, USER_AGENT, number, rfc3339
from watchkeeper.alerts.notification import Delivery, Notification, NotificationState

logger = logging.getLogger("watchkeeper.alerts")
ALERTS_PATH = "/api/v2/alerts"
VALIDITY_INTERVALS = 4
_NOT_IN_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """A name Alertmanager accepts: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    cleaned = _NOT_IN_LABEL_NAME.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _labels(notification: Notification) -> dict[str, str]:
    labels = {label_name(key): value for key, value in notification.labels.items() if value}
    labels.setdefault("alertname", notification.rule)
    labels.setdefault("severity", notification.severity.value)
    return labels


def _annotations(notification: Notification) -> dict[str, str]:
    annotations: dict[str, str] = dict(notification.annotations)
    annotations.setdefault("summary", notification.summary)
    annotations["value"] = number(notification.value)
    if notification.threshold is not None:
        annotations["threshold"] = f"{notification.threshold:g}"
    return {key: value for key, value in annotations.items() if value}


def postable_alert(
    notification: Notification, now: datetime, resend_interval: timedelta
) -> dict[str, object]:
    """One ``postableAlert`` of Alertmanager's API v2."""
    if notification.state is NotificationState.FIRING:
        ends = now + VALIDITY_INTERVALS * resend_interval
    else:
        ends = notification.ended_at or now
    # Alertmanager refuses an alert that ends before it starts.
    ends = max(ends, notification.started_at)
    alert: dict[str, object] = {
        "labels": _labels(notification),
        "annotations": _annotations(notification),
        "startsAt": rfc3339(notification.started_at),
        "endsAt": rfc3339(ends),
    }
    if notification.dashboard_url and notification.dashboard_url.startswith(
        ("http://", "https://")
    ):
        alert["generatorURL"] = notification.dashboard_url
    return alert


class AlertmanagerChannel:
    kind = "alertmanager"

    def __init__(self, name: str, options: AlertmanagerOptions) -> None:
        self._name = name
        self.options = options
        self._poster = HttpPoster(options.timeout_seconds)
        self._url = options.url.rstrip("/") + ALERTS_PATH
        self._headers: Mapping[str, str] = {
            **{key: value.get_secret_value() for key, value in options.headers.items()},
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._scrub = Scrubber.of(value.get_secret_value() for value in options.headers.values())
        self._firing: dict[str, Notification] = {}
        self._ended: dict[str, Notification] = {}
        self._keeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def resend_interval(self) -> timedelta:
        return timedelta(seconds=self.options.resend_interval_seconds)

    def __repr__(self) -> str:
        return f"AlertmanagerChannel(name={self._name!r}, options={self.options!r})"

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        self._remember(notifications)
        return await self._post(notifications)

    async def _post(self, notifications: Sequence[Notification]) -> Delivery:
        return await deliver(
            self._name,
            lambda: self._body(notifications),
            lambda body: self._poster.post(self._url, body, self._headers),
            self.options.retry_policy(),
            self.options.timeout_seconds,
            self.options.deadline_seconds,
            self._scrub,
        )

    def _body(self, notifications: Sequence[Notification]) -> bytes:
        now = datetime.now(UTC)
        return orjson.dumps(
            [postable_alert(item, now, self.resend_interval) for item in notifications]
        )

    def _remember(self, notifications: Sequence[Notification]) -> None:
        for item in notifications:
            if item.group_key == TEST_GROUP_KEY:
                continue  # a test alert is posted once, and expires in four intervals
            if item.state is NotificationState.FIRING:
                self._firing[item.fingerprint] = item
            elif self._firing.pop(item.fingerprint, None) is not None:
                self._ended[item.fingerprint] = item
        if self._firing and (self._keeper is None or self._keeper.done()):
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep_posting(), name=f"watchkeeper-alertmanager-{self._name}"
            )

    async def _keep_posting(self) -> None:
        """Post every firing alert again each resend interval, until each is resolved."""
        while self._firing:
            await asyncio.sleep(self.options.resend_interval_seconds)
            current = list(self._firing.values())
            if not current:
                return
            self._ended.clear()
            delivery = await self._post(current)
            # An alert resolved while it was being posted as firing: its end is posted again, so
            # the firing post cannot have the last word.
            late = [
                self._ended[item.fingerprint] for item in current if item.fingerprint in self._ended
            ]
            if late:
                delivery = await self._post(late)
            if not delivery.delivered:
                logger.warning(
                    "Watchkeeper: posting %d firing alert(s) again to Alertmanager channel %s "
                    "failed: %s",
                    len(current),
                    self._name,
                    delivery.error,
                )

    async def aclose(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._poster.aclose()
