"""Slack: a message to an incoming webhook, one coloured attachment of Block Kit blocks per alert.

The message's ``text`` is the group's one-line title (what Slack shows in notifications); each
alert is an attachment whose ``color`` is its severity (resolved: green) holding a header, a
section (summary, value, threshold, since), a context line of labels, and buttons back to the
dashboard and to the runbook. Slack's documented limits are kept (header 150 characters, section
text 3,000, ten fields, 50 blocks a message), so a large group shows its first
:data:`MAX_ALERTS` alerts and says how many more there are. A 429 is retried after Slack's
``Retry-After``; Slack's other refusals (``invalid_blocks``, ``no_service``…) are reported, not
repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson

from watchkeeper.alerts.channels.attempts import Scrubber, deliver
from watchkeeper.alerts.channels.http import HttpPoster
from watchkeeper.alerts.channels.options import SlackOptions
from watchkeeper.alerts.channels.wording import (
    USER_AGENT,
    colour,
    group_title,
    number,
    rfc3339,
    title,
)
from watchkeeper.alerts.notification import Delivery, Notification

MAX_ALERTS = 10
"""Alerts shown in one message: four blocks each stays under Slack's 50 blocks."""
HEADER_CHARS = 150
SECTION_CHARS = 3000
CONTEXT_CHARS = 2000
MORE_COLOUR = "#9E9EA6"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_link(url: str | None) -> bool:
    return url is not None and url.startswith(("https://", "http://")) and len(url) <= 3000


def _date(moment: datetime) -> str:
    """Shown in each reader's own time zone; the fallback text is UTC."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{rfc3339(moment)}>"


def blocks(notification: Notification) -> list[dict[str, object]]:
    header = {"type": "plain_text", "text": _cut(title(notification), HEADER_CHARS)}
    summary = f"*{escape(notification.summary)}*"
    description = notification.annotations.get("description")
    if description:
        summary += f"\n{escape(description)}"
    fields = [f"*Value*\n{number(notification.value)}"]
    if notification.threshold is not None:
        fields.append(f"*Threshold*\n{notification.threshold:g}")
    fields.append(f"*Since*\n{_date(notification.started_at)}")
    if notification.ended_at is not None:
        fields.append(f"*Resolved*\n{_date(notification.ended_at)}")
    found: list[dict[str, object]] = [
        {"type": "header", "text": header},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(summary, SECTION_CHARS)},
            "fields": [{"type": "mrkdwn", "text": field} for field in fields],
        },
    ]
    labels = " ".join(
        f"`{escape(key)}={escape(value)}`" for key, value in sorted(notification.labels.items())
    )
    if labels:
        found.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(labels, CONTEXT_CHARS)}],
            }
        )
    buttons = [
        (text, url)
        for text, url in (
            ("Open in Watchkeeper", notification.dashboard_url),
            ("Runbook", notification.annotations.get("runbook_url")),
        )
        if _is_link(url)
    ]
    if buttons:
        found.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": text}, "url": url}
                    for text, url in buttons
                ],
            }
        )
    return found


def payload(notifications: Sequence[Notification]) -> dict[str, object]:
    shown = notifications[:MAX_ALERTS]
    attachments: list[dict[str, object]] = [
        {"color": colour(item), "blocks": blocks(item)} for item in shown
    ]
    hidden = len(notifications) - len(shown)
    if hidden:
        attachments.append(
            {
                "color": MORE_COLOUR,
                "blocks": [
                    {
                        "type": "context",
                        "elements": [
                            {"type": "mrkdwn", "text": f"… and {hidden} more in this group"}
                        ],
                    }
                ],
            }
        )
    return {"text": escape(group_title(notifications)), "attachments": attachments}


class SlackChannel:
    kind = "slack"

    def __init__(self, name: str, options: SlackOptions) -> None:
        self._name = name
        self.options = options
        self._poster = HttpPoster(options.timeout_seconds)
        self._scrub = Scrubber.of_url(options.url.get_secret_value())

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"SlackChannel(name={self._name!r}, options={self.options!r})"

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        url = self.options.url.get_secret_value()
        return await deliver(
            self._name,
            lambda: orjson.dumps(payload(notifications)),
            lambda body: self._poster.post(url, body, headers),
            self.options.retry_policy(),
            self.options.timeout_seconds,
            self.options.deadline_seconds,
            self._scrub,
        )

    async def aclose(self) -> None:
        await self._poster.aclose()
