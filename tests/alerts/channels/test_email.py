"""The e-mail channel against a real SMTP server (aiosmtpd) on 127.0.0.1 that requires STARTTLS
with a certificate made for the test, and AUTH."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.channels.conftest import DASHBOARD, notification
from tests.alerts.channels.receivers import (
    Certificate,
    MailHandler,
    self_signed_certificate,
    smtp_server,
)
from tests.support.phoenix import free_port
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
USER = "alerts@example.com"
PASSWORD = "smtp-pass-4c2e9a"


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed_certificate(tmp_path)


@pytest.fixture
def server(certificate: Certificate) -> Iterator[tuple[int, MailHandler]]:
    with smtp_server(certificate, USER, PASSWORD) as running:
        yield running


def email_channel(port: int, certificate: Certificate | None, **options: object) -> Channel:
    settings: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_user": USER,
        "smtp_password": PASSWORD,
        "sender": "Watchkeeper <alerts@example.com>",
        "to": ["oncall@example.com", "lead@example.com"],
        "ca_file": str(certificate.cert) if certificate else None,
        "timeout_seconds": 20,
        "backoff_seconds": 0.01,
        **options,
    }
    return build_channel(ChannelSpec("ops-mail", "email", settings))


async def test_a_firing_alert_arrives_over_starttls_with_auth_in_plain_and_html(
    server: tuple[int, MailHandler], certificate: Certificate
) -> None:
    port, handler = server
    channel = email_channel(port, certificate)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert delivery.delivered, delivery.error
    assert (delivery.attempts, delivery.status) == (1, 250)
    (mail,) = handler.mails
    assert mail.tls
    assert mail.login == USER
    assert mail.sender == "alerts@example.com"
    assert mail.recipients == ["oncall@example.com", "lead@example.com"]
    message = mail.message
    assert message["Subject"] == "[FIRING critical] error rate high"
    assert message["To"] == "oncall@example.com, lead@example.com"
    assert re.fullmatch(r"<[^<>@]+@example\.com>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None
    assert rich is not None
    text = plain.get_content()
    assert "Error rate on /chat is 12.5 %" in text
    assert "value 0.125 (threshold 0.05)" in text
    assert "labels: alertname=error rate high, route=/chat, severity=critical" in text
    assert f"Dashboard: {DASHBOARD}" in text
    markup = rich.get_content()
    assert "border-left:6px solid #E01E5A" in markup
    assert f'<a href="{DASHBOARD}">Dashboard</a>' in markup


# aiosmtpd warns that AUTH is allowed without STARTTLS: here TLS is there from the first byte.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_tls_from_the_first_byte(certificate: Certificate) -> None:
    with smtp_server(certificate, USER, PASSWORD, implicit_tls=True) as (port, handler):
        channel = email_channel(port, certificate, tls=True, starttls=False)
        delivery = await channel.send([notification()])
        await channel.aclose()

    assert delivery.delivered, delivery.error
    (mail,) = handler.mails
    assert mail.login == USER
    assert mail.tls


async def test_a_resolved_group_is_one_mail(
    server: tuple[int, MailHandler], certificate: Certificate
) -> None:
    port, handler = server
    group = [
        notification(NotificationState.RESOLVED),
        notification(
            NotificationState.RESOLVED, Severity.WARNING, rule="slow responses", fingerprint="f2"
        ),
    ]
    channel = email_channel(port, certificate)
    delivery = await channel.send(group)
    await channel.aclose()

    assert delivery.delivered, delivery.error
    (mail,) = handler.mails
    assert mail.message["Subject"] == "[RESOLVED] 2 resolved: error rate high, slow responses"
    plain = mail.message.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert "[RESOLVED] error rate high" in text
    assert "[RESOLVED] slow responses" in text
    assert "resolved 2026-12-01T02:07:00.000Z" in text


async def test_html_in_alerts_is_escaped(
    server: tuple[int, MailHandler], certificate: Certificate
) -> None:
    port, handler = server
    channel = email_channel(port, certificate)
    odd = notification(
        rule="a\r\nBcc: x@example.com", annotations={"summary": "<script>x</script>"}
    )
    delivery = await channel.send([odd])
    await channel.aclose()

    assert delivery.delivered, delivery.error
    message = handler.mails[0].message
    assert message["Bcc"] is None
    assert message["Subject"] == "[FIRING critical] a Bcc: x@example.com"
    rich = message.get_body(("html",))
    assert rich is not None
    assert "<script>" not in rich.get_content()
    assert "&lt;script&gt;" in rich.get_content()


async def test_a_wrong_password_fails_once_and_never_shows_the_password(
    server: tuple[int, MailHandler], certificate: Certificate
) -> None:
    port, handler = server
    channel = email_channel(port, certificate, smtp_password="wrong-pass-91", attempts=3)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert not delivery.delivered
    assert delivery.attempts == 1  # 535 is final
    assert delivery.status == 535
    assert delivery.error is not None
    assert delivery.error.startswith("SMTP 535")
    assert handler.mails == []
    shown = shown_options(channel)
    assert shown["smtp_password"] == REDACTED
    for text in (repr(channel), json.dumps(shown), str(delivery)):
        assert "wrong-pass-91" not in text


async def test_a_certificate_not_trusted_fails_the_delivery(
    server: tuple[int, MailHandler],
) -> None:
    port, handler = server
    channel = email_channel(port, None, attempts=2)  # the system's CAs only
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert not delivery.delivered
    assert delivery.attempts == 1
    assert delivery.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
    assert handler.mails == []


async def test_a_server_without_starttls_never_gets_the_password(
    certificate: Certificate,
) -> None:
    with smtp_server(None, USER, PASSWORD) as (port, handler):
        channel = email_channel(port, certificate, attempts=1)
        delivery = await channel.send([notification()])
        await channel.aclose()

    assert not delivery.delivered
    assert delivery.error is not None
    assert "STARTTLS" in delivery.error
    assert handler.mails == []


async def test_no_server_is_a_failed_delivery_after_the_attempts(certificate: Certificate) -> None:
    channel = email_channel(free_port(), certificate, attempts=2)
    delivery = await channel.send([notification()])
    await channel.aclose()

    assert (delivery.delivered, delivery.attempts) == (False, 2)
    assert delivery.error


def test_options_that_contradict_each_other_fail_when_configured(tmp_path: Path) -> None:
    base = {"smtp_host": "mail", "sender": "a@example.com", "to": ["b@example.com"]}
    cases = {
        "tls and starttls exclude each other": {**base, "tls": True},
        "smtp_password is set but smtp_user is not": {**base, "smtp_password": "p"},
        "smtp_user needs starttls or tls": {**base, "smtp_user": "u", "starttls": False},
        "to: List should have at least 1 item": {**base, "to": []},
        "ca_file cannot be used": {**base, "ca_file": str(tmp_path / "missing.pem")},
    }
    for expected, options in cases.items():
        with pytest.raises(ChannelConfigError, match=expected) as caught:
            build_channel(ChannelSpec("ops-mail", "email", options))
        assert "'ops-mail'" in str(caught.value)
