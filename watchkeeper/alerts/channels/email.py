"""E-mail: one message per group over SMTP, with a plain-text and an HTML part.

Sent with aiosmtplib, on the event loop: an attempt past its deadline is cancelled with its
connection, which a thread blocked in ``smtplib`` could not be. STARTTLS (the default, port 587)
or TLS from the first byte (``tls``, port 465) is required before AUTH when the options ask for
it: a server that offers no STARTTLS fails the delivery rather than receive the password in
clear. Certificates are checked against the system's CAs or ``ca_file``. Temporary failures
(no connection, a timeout, a 4xx reply) are retried; a 5xx reply (a refused sender, bad
credentials) is not.
"""

from __future__ import annotations

import html
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from watchkeeper.alerts.channels.attempts import Outcome, Scrubber, deliver, describe
from watchkeeper.alerts.channels.options import EmailOptions
from watchkeeper.alerts.channels.wording import (
    colour,
    group_title,
    links,
    plain_text,
    rfc3339,
    title,
    value_line,
)
from watchkeeper.alerts.notification import Delivery, Notification

SENT = 250


def _one_line(text: str) -> str:
    # A header may not hold a line break; a rule name might.
    return " ".join(text.split())


def html_text(notifications: Sequence[Notification]) -> str:
    sections = []
    for item in notifications:
        rows = [
            f"<h2 style='margin:0 0 4px'>{html.escape(title(item))}</h2>",
            f"<p style='margin:0 0 4px'><strong>{html.escape(item.summary)}</strong></p>",
        ]
        description = item.annotations.get("description")
        if description:
            rows.append(f"<p style='margin:0 0 4px'>{html.escape(description)}</p>")
        facts = [value_line(item), f"since {rfc3339(item.started_at)}"]
        if item.ended_at is not None:
            facts.append(f"resolved {rfc3339(item.ended_at)}")
        facts += [f"{key}={value}" for key, value in sorted(item.labels.items())]
        rows.append(
            "<ul style='margin:0 0 4px'>"
            + "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
            + "</ul>"
        )
        anchors = " · ".join(
            f'<a href="{html.escape(url)}">{html.escape(label)}</a>' for label, url in links(item)
        )
        if anchors:
            rows.append(f"<p style='margin:0'>{anchors}</p>")
        sections.append(
            f"<div style='border-left:6px solid {colour(item)};padding:8px 12px;"
            f"margin:0 0 12px'>{''.join(rows)}</div>"
        )
    return (
        "<!DOCTYPE html><html><body style='font-family:sans-serif'>"
        + "".join(sections)
        + "</body></html>"
    )


def message_of(options: EmailOptions, notifications: Sequence[Notification]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _one_line(group_title(notifications))
    message["From"] = options.sender
    message["To"] = ", ".join(options.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(options.sender)[1].rpartition("@")[2]
    message["Message-ID"] = make_msgid(domain=domain or None)
    message.set_content(plain_text(notifications))
    message.add_alternative(html_text(notifications), subtype="html")
    return message


class EmailChannel:
    kind = "email"

    def __init__(self, name: str, options: EmailOptions) -> None:
        self._name = name
        self.options = options
        # Built now, so a missing or unreadable CA file fails when the channel is configured.
        self._tls = ssl.create_default_context(
            cafile=str(options.ca_file) if options.ca_file else None
        )
        password = options.smtp_password.get_secret_value() if options.smtp_password else None
        self._password = password
        self._scrub = Scrubber.of([password])

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"EmailChannel(name={self._name!r}, options={self.options!r})"

    async def send(self, notifications: Sequence[Notification]) -> Delivery:
        return await deliver(
            self._name,
            lambda: message_of(self.options, notifications),
            self._attempt,
            self.options.retry_policy(),
            self.options.timeout_seconds,
            self.options.deadline_seconds,
            self._scrub,
        )

    async def _attempt(self, message: EmailMessage) -> Outcome:
        options = self.options
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=options.smtp_host,
                port=options.smtp_port,
                username=options.smtp_user,
                password=self._password,
                use_tls=options.tls,
                start_tls=options.starttls,
                tls_context=self._tls,
                timeout=options.timeout_seconds,
            )
        except aiosmtplib.SMTPResponseException as error:
            return Outcome(
                False,
                status=error.code,
                error=f"SMTP {error.code}: {error.message}",
                temporary=400 <= error.code < 500,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = sorted({refusal.code for refusal in error.recipients})
            return Outcome(
                False,
                status=codes[0] if codes else None,
                error=f"every recipient refused (SMTP {', '.join(map(str, codes))})",
                temporary=all(400 <= code < 500 for code in codes),
            )
        except ssl.SSLError as error:
            # A certificate that does not verify will not verify on the next try either.
            return Outcome(False, error=describe(error))
        except OSError as error:  # aiosmtplib's connection errors and timeouts are OSErrors
            return Outcome(False, error=describe(error), temporary=True)
        except aiosmtplib.SMTPException as error:
            return Outcome(False, error=describe(error))
        # Some recipients refused, the rest received it: sending again would repeat it to them.
        details = {"refused_recipients": str(len(refused))} if refused else {}
        return Outcome(True, status=SENT, details=details)

    async def aclose(self) -> None:
        """Each delivery opens and closes its own connection: nothing is held between them."""
