"""``watchkeeper alerts test-channel NAME``: one made-up alert sent through a configured channel."""

from __future__ import annotations

from datetime import UTC, datetime

from watchkeeper.alerts.channels.wording import TEST_GROUP_KEY
from watchkeeper.alerts.notification import (
    Channel,
    Delivery,
    Notification,
    NotificationState,
    Severity,
)

TEST_RULE = "WatchkeeperTest"


def sample_notification(dashboard_url: str | None = None) -> Notification:
    """A warning that says what it is, so nobody acts on it."""
    now = datetime.now(UTC)
    return Notification(
        fingerprint=f"watchkeeper-test-{int(now.timestamp())}",
        rule=TEST_RULE,
        severity=Severity.WARNING,
        state=NotificationState.FIRING,
        value=1.0,
        labels={"alertname": TEST_RULE, "severity": Severity.WARNING.value},
        annotations={
            "summary": "Test notification from Watchkeeper",
            "description": "Sent by `watchkeeper alerts test-channel`: no action is needed.",
        },
        started_at=now,
        dashboard_url=dashboard_url,
        group_key=TEST_GROUP_KEY,
    )


async def send_test(channel: Channel, dashboard_url: str | None = None) -> Delivery:
    """Send the test notification through ``channel``; its delivery says whether it arrived."""
    return await channel.send([sample_notification(dashboard_url)])
