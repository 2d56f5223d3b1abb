"""How a notification reads, shared by the channels that show it to people and machines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from watchkeeper._version import __version__
from watchkeeper.alerts.notification import Notification, NotificationState, Severity

USER_AGENT = f"Watchkeeper/{__version__}"
TEST_GROUP_KEY = "watchkeeper-test"
"""The group of the test notification (``watchkeeper alerts test-channel``): sent once, never
kept firing."""
SEVERITY_COLOURS = {Severity.CRITICAL: "#E01E5A", Severity.WARNING: "#ECB22E"}
RESOLVED_COLOUR = "#2EB67D"


def rfc3339(moment: datetime) -> str:
    """``2026-12-01T02:15:00.123Z``: UTC, as receivers' APIs (Alertmanager's) expect."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def group_state(notifications: Sequence[Notification]) -> NotificationState:
    """A group fires while any of its alerts fires; it is resolved once all are."""
    if any(item.state is NotificationState.FIRING for item in notifications):
        return NotificationState.FIRING
    return NotificationState.RESOLVED


def title(notification: Notification) -> str:
    """``[FIRING critical] error rate high`` (``[RESOLVED]`` once it is over)."""
    if notification.state is NotificationState.RESOLVED:
        return f"[RESOLVED] {notification.rule}"
    return f"[FIRING {notification.severity.value}] {notification.rule}"


def group_title(notifications: Sequence[Notification]) -> str:
    """One line for a whole group: its only alert's title, or how many fire and resolved."""
    if len(notifications) == 1:
        return title(notifications[0])
    firing = sum(item.state is NotificationState.FIRING for item in notifications)
    resolved = len(notifications) - firing
    parts = [f"{firing} firing"] if firing else []
    parts += [f"{resolved} resolved"] if resolved else []
    rules = ", ".join(dict.fromkeys(item.rule for item in notifications))
    return f"[{group_state(notifications).value.upper()}] {' · '.join(parts)}: {rules}"


def value_line(notification: Notification) -> str:
    """``value 12.5 (threshold 5)``."""
    shown = f"value {number(notification.value)}"
    if notification.threshold is not None:
        shown += f" (threshold {notification.threshold:g})"
    return shown


def colour(notification: Notification) -> str:
    """The severity's colour (Slack's own red and yellow); green once resolved."""
    if notification.state is NotificationState.RESOLVED:
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS[notification.severity]


def links(notification: Notification) -> list[tuple[str, str]]:
    """Where to look: the dashboard, and the runbook when the rule has one."""
    candidates = (
        ("Dashboard", notification.dashboard_url),
        ("Runbook", notification.annotations.get("runbook_url")),
    )
    return [(label, url) for label, url in candidates if url]


def plain_text(notifications: Sequence[Notification]) -> str:
    """The whole group as plain text, one paragraph per alert."""
    parts = []
    for item in notifications:
        lines = [title(item), item.summary]
        description = item.annotations.get("description")
        if description:
            lines.append(description)
        lines.append(value_line(item))
        lines.append(f"since {rfc3339(item.started_at)}")
        if item.ended_at is not None:
            lines.append(f"resolved {rfc3339(item.ended_at)}")
        if item.labels:
            labels = ", ".join(f"{key}={value}" for key, value in sorted(item.labels.items()))
            lines.append(f"labels: {labels}")
        lines += [f"{label}: {url}" for label, url in links(item)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
