"""The Slack channel against a local incoming webhook that applies Slack's documented payload
rules (Block Kit blocks, attachments' colours, limits) and answers as Slack does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.alerts.channels.conftest import DASHBOARD, notification
from tests.alerts.channels.receivers import (
    MAX_BLOCKS,
    Reply,
    SlackReceiver,
    SlackRefusal,
    check_slack_payload,
    check_with_slack_sdk,
)
from watchkeeper.alerts.channels import build_channel, shown_options
from watchkeeper.alerts.channels.slack import MAX_ALERTS, payload
from watchkeeper.alerts.notification import (
    Channel,
    ChannelSpec,
    NotificationState,
    Severity,
)
from watchkeeper.redaction import REDACTED

pytestmark = pytest.mark.anyio
TOKEN = "B0AAAAAAA/xoxdemoTOKENtoken1234"


def slack_channel(server: SlackReceiver, **options: object) -> Channel:
    settings = {
        "url": f"{server.url}/services/T0000000/{TOKEN}",
        "backoff_seconds": 0.01,
        **options,
    }
    return build_channel(ChannelSpec("ops-slack", "slack", settings))


def sent(server: SlackReceiver, index: int = -1) -> dict[str, Any]:
    return dict(json.loads(server.received[index].body))


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


async def test_a_firing_alert_is_a_coloured_message_slack_accepts(slack: SlackReceiver) -> None:
    channel = slack_channel(slack)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered, (delivery.error, slack.refusals)
    assert delivery.status == 200
    message = sent(slack)
    assert message["text"] == "[FIRING critical] error rate high"
    (attachment,) = message["attachments"]
    assert attachment["color"] == "#E01E5A"
    header, section, context, actions = attachment["blocks"]
    assert header["text"]["text"] == "[FIRING critical] error rate high"
    assert section["text"]["text"].startswith("*Error rate on /chat is 12.5 %*")
    fields = [field["text"] for field in section["fields"]]
    assert fields[:2] == ["*Value*\n0.125", "*Threshold*\n0.05"]
    assert fields[2].startswith("*Since*\n<!date^1796090400^")
    assert "`route=/chat`" in context["elements"][0]["text"]
    buttons = {button["text"]["text"]: button["url"] for button in actions["elements"]}
    assert buttons == {
        "Open in Watchkeeper": DASHBOARD,
        "Runbook": "https://runbooks.example.com/error-rate",
    }


async def test_warning_and_resolved_have_their_own_colours(slack: SlackReceiver) -> None:
    channel = slack_channel(slack)
    warning = await channel.send([notification(severity=Severity.WARNING)])
    resolved = await channel.send([notification(NotificationState.RESOLVED)])
    await channel.aclose()

    assert warning.delivered, slack.refusals
    assert resolved.delivered, slack.refusals
    assert sent(slack, 0)["attachments"][0]["color"] == "#ECB22E"
    message = sent(slack, 1)
    assert message["text"] == "[RESOLVED] error rate high"
    assert message["attachments"][0]["color"] == "#2EB67D"
    assert "*Resolved*" in texts(message["attachments"][0]["blocks"])


async def test_a_large_group_stays_within_slacks_limits(slack: SlackReceiver) -> None:
    group = [
        notification(fingerprint=f"fp-{index}", rule=f"rule {index} " + "x" * 200)
        for index in range(MAX_ALERTS + 5)
    ]
    channel = slack_channel(slack)
    delivery = await channel.send(group)
    await channel.aclose()

    assert delivery.delivered, slack.refusals
    message = sent(slack)
    assert message["text"].startswith(f"[FIRING] {MAX_ALERTS + 5} firing: rule 0")
    assert len(message["attachments"]) == MAX_ALERTS + 1
    assert "and 5 more" in texts(message["attachments"][-1]["blocks"])


async def test_text_is_escaped_for_slack(slack: SlackReceiver) -> None:
    odd = notification(
        rule="<!channel> & co",
        annotations={"summary": "a <b> & c", "runbook_url": "not a link"},
        dashboard_url=None,
    )
    channel = slack_channel(slack)
    delivery = await channel.send([odd])
    await channel.aclose()

    assert delivery.delivered, slack.refusals
    message = sent(slack)
    assert message["text"] == "[FIRING critical] &lt;!channel&gt; &amp; co"
    section = message["attachments"][0]["blocks"][1]
    assert section["text"]["text"] == "*a &lt;b&gt; &amp; c*"
    # Neither a dashboard link nor a usable runbook link: no buttons at all.
    assert all(block["type"] != "actions" for block in message["attachments"][0]["blocks"])


def test_the_receiver_refuses_what_slack_refuses() -> None:
    """The local Slack is strict: a test that passes against it is no formality."""
    good = payload([notification()])
    check_slack_payload(good)
    long_header = json.loads(json.dumps(good))
    long_header["attachments"][0]["blocks"][0]["text"]["text"] = "x" * 151
    too_many = {"text": "t", "blocks": [{"type": "divider"}] * (MAX_BLOCKS + 1)}
    bad_colour = {"text": "t", "attachments": [{"color": "red", "blocks": []}]}
    mrkdwn_header = {
        "text": "t",
        "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
    }
    for refused in (long_header, too_many, bad_colour, mrkdwn_header, {"attachments": []}):
        with pytest.raises(SlackRefusal):
            check_slack_payload(refused)


async def test_a_429_is_retried_after_slacks_retry_after(slack: SlackReceiver) -> None:
    slack.plan(Reply(429, "rate_limited", {"Retry-After": "1"}))
    channel = slack_channel(slack, attempts=2)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered
    assert delivery.attempts == 2
    first, second = slack.received
    assert second.at - first.at >= 0.9
    assert first.body == second.body


async def test_slacks_refusal_is_reported_and_not_repeated(slack: SlackReceiver) -> None:
    slack.plan(Reply(404, "no_service"))
    channel = slack_channel(slack, attempts=3)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.error == "status 404: no_service"
    assert len(slack.received) == 1


async def test_the_webhook_url_is_never_shown(slack: SlackReceiver) -> None:
    slack.plan(Reply(403, f"action_prohibited for /services/T0000000/{TOKEN}"))
    channel = slack_channel(slack, attempts=1)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert shown_options(channel)["url"] == REDACTED
    for text in (repr(channel), str(delivery), json.dumps(shown_options(channel))):
        assert "xoxdemoTOKEN" not in text


def test_slacks_own_models_refuse_what_they_do_not_know() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": "red"}
    with pytest.raises(SlackRefusal, match="fields the SDK does not know"):
        check_with_slack_sdk(section)
    overlong = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackRefusal, match="3000"):
        check_with_slack_sdk(overlong)
