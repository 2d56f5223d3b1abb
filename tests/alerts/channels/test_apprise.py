"""The Apprise channel (optional extra) through Apprise's JSON service to a real local server,
and its install hint when Apprise is missing."""

from __future__ import annotations

import json
import sys

import pytest

from tests.alerts.channels.conftest import notification
from tests.alerts.channels.receivers import HttpReceiver, Reply
from watchkeeper.alerts.channels import build_channel, shown_options
from watchkeeper.alerts.notification import (
    Channel,
    ChannelConfigError,
    ChannelSpec,
    NotificationState,
    Severity,
)
from watchkeeper.redaction import REDACTED

pytestmark = pytest.mark.anyio
pytest.importorskip("apprise", reason="Apprise is the apprise extra")


def apprise_channel(receiver: HttpReceiver, **options: object) -> Channel:
    url = receiver.url.replace("http://", "json://") + "/notify?token=apprise-tok-9"
    return build_channel(ChannelSpec("ops-apprise", "apprise", {"urls": [url], **options}))


async def test_a_group_arrives_as_one_message_typed_by_severity(receiver: HttpReceiver) -> None:
    channel = apprise_channel(receiver)
    critical = await channel.send([notification()])
    warning = await channel.send([notification(severity=Severity.WARNING)])
    resolved = await channel.send([notification(NotificationState.RESOLVED)])
    await channel.aclose()

    assert critical.delivered, critical.error
    assert warning.delivered, warning.error
    assert resolved.delivered, resolved.error
    bodies = [json.loads(request.body) for request in receiver.received]
    assert [request.path for request in receiver.received] == ["/notify"] * 3
    assert [body["type"] for body in bodies] == ["failure", "warning", "success"]
    assert bodies[0]["title"] == "[FIRING critical] error rate high"
    assert "value 0.125 (threshold 0.05)" in bodies[0]["message"]
    assert bodies[2]["title"] == "[RESOLVED] error rate high"


async def test_a_service_that_fails_is_a_failed_delivery_without_the_url(
    receiver: HttpReceiver,
) -> None:
    receiver.plan(Reply(500, "broken"))
    channel = apprise_channel(receiver)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.error == "Apprise could not notify every service"
    assert shown_options(channel)["urls"] == [REDACTED]
    for text in (repr(channel), str(delivery), json.dumps(shown_options(channel))):
        assert "apprise-tok-9" not in text


def test_a_url_apprise_does_not_know_is_refused_without_echoing_it() -> None:
    spec = ChannelSpec("ops-apprise", "apprise", {"urls": ["nosuchservice://tok-secret-2"]})
    with pytest.raises(ChannelConfigError) as caught:
        build_channel(spec)
    assert str(caught.value).startswith("channel 'ops-apprise': urls.0: not a URL Apprise knows")
    assert "tok-secret-2" not in str(caught.value)


def test_without_apprise_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise now raises ImportError
    with pytest.raises(ChannelConfigError) as caught:
        build_channel(ChannelSpec("ops-apprise", "apprise", {"urls": ["json://localhost"]}))
    assert str(caught.value) == (
        "channel 'ops-apprise': the apprise kind needs Apprise: pip install 'watchkeeper[apprise]'"
    )
