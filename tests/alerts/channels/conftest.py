"""Fixtures of the channels' tests: notifications and the real receivers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.alerts.channels.receivers import (
    ALERTMANAGER,
    Alertmanager,
    HttpReceiver,
    SlackReceiver,
)
from watchkeeper.alerts.notification import Notification, NotificationState, Severity

DASHBOARD = "https://watchkeeper.example.com/watchkeeper/#/alerts/fp-1"


def notification(
    state: NotificationState = NotificationState.FIRING,
    severity: Severity = Severity.CRITICAL,
    rule: str = "error rate high",
    fingerprint: str = "fp-1",
    **changes: object,
) -> Notification:
    started = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    fields: dict[str, object] = {
        "fingerprint": fingerprint,
        "rule": rule,
        "severity": severity,
        "state": state,
        "value": 0.125,
        "threshold": 0.05,
        "labels": {"alertname": rule, "severity": severity.value, "route": "/chat"},
        "annotations": {
            "summary": "Error rate on /chat is 12.5 %",
            "description": "More than 5 % of requests to /chat fail.",
            "runbook_url": "https://runbooks.example.com/error-rate",
        },
        "started_at": started,
        "ended_at": started + timedelta(minutes=7) if state is NotificationState.RESOLVED else None,
        "dashboard_url": DASHBOARD,
        "group_key": "group-1",
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    server = SlackReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: HttpReceiver) -> Iterator[Alertmanager]:
    if ALERTMANAGER is None:
        pytest.skip("Alertmanager is not installed (Debian package prometheus-alertmanager)")
    manager = Alertmanager(tmp_path, f"{receiver.url}/alertmanager").wait_ready()
    yield manager
    manager.stop()
