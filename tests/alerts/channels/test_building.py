"""Channels built from their configured specs: options checked with errors that name the channel
and option without echoing secrets, options shown redacted, and the test notification."""

from __future__ import annotations

import json

import pytest

from tests.alerts.channels.conftest import notification
from tests.alerts.channels.receivers import HttpReceiver
from watchkeeper.alerts.channels import KINDS, build_channel, send_test, shown_options
from watchkeeper.alerts.notification import Channel, ChannelConfigError, ChannelSpec
from watchkeeper.redaction import REDACTED

SPECS = {
    "webhook": {"url": "https://hooks.example.com/abc", "secret": "s3cr3t-signing"},
    "slack": {"url": "https://hooks.slack.com/services/T0/B0/XXXXsecretXXXX"},
    "email": {
        "smtp_host": "smtp.example.com",
        "smtp_user": "alerts",
        "smtp_password": "pw-0f9e",
        "sender": "alerts@example.com",
        "to": ["oncall@example.com"],
    },
    "alertmanager": {
        "url": "http://user:am-pass-3@alertmanager:9093",
        "headers": {"Authorization": "Bearer am-token-5"},
    },
    "apprise": {"urls": ["json://hooks.example.com/notify?token=apprise-tok-9"]},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_builds_and_shows_no_secret(kind: str) -> None:
    channel = build_channel(ChannelSpec(f"ops-{kind}", kind, SPECS[kind]))
    assert isinstance(channel, Channel)
    assert (channel.name, channel.kind) == (f"ops-{kind}", kind)
    shown = json.dumps(shown_options(channel))
    secrets = ("s3cr3t-signing", "XXXXsecretXXXX", "pw-0f9e", "am-pass-3", "am-token-5")
    for secret in (*secrets, "apprise-tok-9"):
        assert secret not in shown
        assert secret not in repr(channel)
    assert REDACTED in shown


def test_shown_options_keep_what_is_not_secret() -> None:
    channel = build_channel(ChannelSpec("ops-email", "email", SPECS["email"]))
    shown = shown_options(channel)
    assert shown["smtp_host"] == "smtp.example.com"
    assert shown["smtp_port"] == 587
    assert shown["starttls"] is True
    assert shown["smtp_password"] == REDACTED
    manager = shown_options(build_channel(ChannelSpec("am", "alertmanager", SPECS["alertmanager"])))
    assert manager["url"] == REDACTED  # a URL carrying a password is hidden whole
    assert manager["resend_interval_seconds"] == 60.0


def test_an_unknown_kind_is_named_with_the_known_ones() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        build_channel(ChannelSpec("pager", "pagerduty", {}))
    assert str(caught.value) == (
        "channel 'pager': unknown kind 'pagerduty' "
        "(one of: alertmanager, apprise, email, slack, webhook)"
    )


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("webhook", {}, "channel 'hook': url: Field required"),
        (
            "webhook",
            {"url": "ftp://files.example.com/tok-secret-1"},
            "channel 'hook': url: Value error, must be an http:// or https:// URL with a host",
        ),
        (
            "webhook",
            {"url": "https://h.example.com", "timeout_second": 3},
            "channel 'hook': timeout_second: Extra inputs are not permitted",
        ),
        (
            "slack",
            {"url": "https://hooks.slack.com/x", "attempts": 0},
            "channel 'hook': attempts: Input should be greater than or equal to 1",
        ),
        (
            "alertmanager",
            {"url": "alertmanager:9093"},
            "channel 'hook': url: Value error, must be an http:// or https:// URL with a host",
        ),
    ],
)
def test_bad_options_are_named_without_their_values(
    kind: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ChannelConfigError) as caught:
        build_channel(ChannelSpec("hook", kind, options))
    assert str(caught.value) == message
    assert "tok-secret-1" not in str(caught.value)


@pytest.mark.anyio
async def test_send_test_delivers_a_warning_that_says_it_is_a_test(
    receiver: HttpReceiver,
) -> None:
    channel = build_channel(ChannelSpec("ops-hook", "webhook", {"url": f"{receiver.url}/t"}))
    delivery = await send_test(channel, dashboard_url="https://wk.example.com/watchkeeper/")
    await channel.aclose()

    assert delivery.delivered, delivery.error
    (alert,) = json.loads(receiver.received[0].body)["alerts"]
    assert alert["rule"] == "WatchkeeperTest"
    assert alert["severity"] == "warning"
    assert alert["summary"] == "Test notification from Watchkeeper"
    assert alert["dashboard_url"] == "https://wk.example.com/watchkeeper/"


@pytest.mark.anyio
async def test_a_channel_is_usable_again_after_aclose(receiver: HttpReceiver) -> None:
    """The runtime closes channels at stop; the CLI may build and close one per command."""
    channel = build_channel(ChannelSpec("ops-hook", "webhook", {"url": f"{receiver.url}/t"}))
    assert (await send_test(channel)).delivered
    await channel.aclose()
    assert (await send_test(channel)).delivered
    await channel.aclose()
    assert len(receiver.received) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_notification_no_message_can_be_made_of_is_a_failed_delivery(kind: str) -> None:
    broken = notification(annotations={"summary": object()})
    channel = build_channel(ChannelSpec(f"ops-{kind}", kind, SPECS[kind]))
    delivery = await channel.send([broken])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts) == (False, 0)
    assert delivery.error is not None
    assert delivery.error.startswith("no message: ")
