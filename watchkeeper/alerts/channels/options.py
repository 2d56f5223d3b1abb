"""Each channel kind's options: typed, validated, secrets held as ``SecretStr``.

A :class:`~watchkeeper.alerts.notification.ChannelSpec`'s raw ``options`` mapping (from the rules
file or ``WATCHKEEPER_ALERT_CHANNELS``) is validated against its kind's model here; unknown
options are refused, so a misspelt ``smtp_pasword`` fails at start-up instead of sending mail
unauthenticated. Secrets (webhook and Slack URLs, signing secrets, header values, the SMTP
password) are ``SecretStr``: their ``repr`` shows ``**********`` and
:func:`watchkeeper.redaction.redact_settings` shows ``***``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from watchkeeper.redaction import redact_settings
from watchkeeper.resilience.policy import RetryPolicy


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _secret_http_url(value: SecretStr) -> SecretStr:
    try:
        _http_url(value.get_secret_value())
    except ValueError:
        # The URL is the secret: the message must not echo it.
        raise ValueError("must be an http:// or https:// URL with a host") from None
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
SecretHttpUrl = Annotated[SecretStr, AfterValidator(_secret_http_url)]


DEADLINE_SECONDS = 25.0
DEADLINE_MEANING = (
    "Longest a whole delivery takes, retries and waits included; keep it below the evaluator's "
    "alert_send_timeout (30 s by default), which would otherwise cut it short."
)


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # A URL with a password is a plain string: repr would show it, so show the redacted form.
        return list(redact_settings(self).items())


class HttpOptions(_Options):
    """What every channel that posts over HTTP shares: one attempt's deadline and the retries."""

    timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Deadline of one attempt, connection included."
    )
    deadline_seconds: float = Field(DEADLINE_SECONDS, gt=0, le=600, description=DEADLINE_MEANING)
    attempts: int = Field(3, ge=1, le=10, description="Tries in all, the first included.")
    backoff_seconds: float = Field(
        1.0, gt=0, le=300, description="The n-th retry waits a random time up to this * 2^(n-1)."
    )
    max_backoff_seconds: float = Field(30.0, gt=0, le=3600, description="Longest backoff.")
    retry_after_cap_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Longest Retry-After (429, 503) waited for; a longer one fails the delivery "
        "at once, to be sent again at the next evaluation.",
    )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts,
            base_delay=self.backoff_seconds,
            max_delay=self.max_backoff_seconds,
            retry_after_cap=self.retry_after_cap_seconds,
        )


class WebhookOptions(HttpOptions):
    url: SecretHttpUrl = Field(
        description="Where the JSON body is posted; secret, as such URLs often carry a token."
    )
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key: signs each body (X-Watchkeeper-Signature)."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. Authorization)."
    )


class SlackOptions(HttpOptions):
    url: SecretHttpUrl = Field(description="The incoming webhook's URL (its path is the token).")


class AlertmanagerOptions(HttpOptions):
    url: HttpUrl = Field(description="Alertmanager's base URL, e.g. http://alertmanager:9093.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. Authorization)."
    )
    resend_interval_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="How often a firing alert is posted again until it resolves. Each post is "
        "valid for four intervals (Prometheus's rule), after which Alertmanager resolves the "
        "alert by itself, so a Watchkeeper that stopped leaves no alert firing for ever.",
    )


class AppriseOptions(HttpOptions):
    urls: list[SecretStr] = Field(
        min_length=1, description="Apprise URLs (msteams://…, tgram://…): secrets, with tokens."
    )
    attempts: int = Field(
        1,
        ge=1,
        le=10,
        description="Tries in all: a retry repeats the message to the services that received it.",
    )


class EmailOptions(_Options):
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = Field(None, description="AUTH user name; none: no AUTH.")
    smtp_password: SecretStr | None = None
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS (port 587).")
    tls: bool = Field(False, description="TLS from the first byte instead (port 465).")
    ca_file: Path | None = Field(
        None, description="PEM file of the CA to trust instead of the system's (private CAs)."
    )
    sender: str = Field(min_length=3, description="The From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    timeout_seconds: float = Field(
        15.0, gt=0, le=600, description="Deadline of one attempt: connect, TLS, AUTH and send."
    )
    deadline_seconds: float = Field(DEADLINE_SECONDS, gt=0, le=600, description=DEADLINE_MEANING)
    attempts: int = Field(
        2, ge=1, le=10, description="Tries in all; only temporary failures (4xx) are retried."
    )
    backoff_seconds: float = Field(2.0, gt=0, le=300)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, base_delay=self.backoff_seconds, max_delay=60.0)

    @model_validator(mode="after")
    def _consistent(self) -> EmailOptions:
        if self.tls and self.starttls:
            raise ValueError("tls and starttls exclude each other: set starttls to false for tls")
        if self.smtp_password is not None and self.smtp_user is None:
            raise ValueError("smtp_password is set but smtp_user is not")
        if self.smtp_user is not None and not (self.tls or self.starttls):
            raise ValueError("smtp_user needs starttls or tls: a password is never sent in clear")
        return self
