"""Trying a delivery again: a deadline per attempt and per delivery, backoff with jitter,
Retry-After honoured.

Every channel's ``send`` is one call of :func:`deliver` around its own single attempt, so the
rules are the same everywhere: a whole delivery, retries and waits included, ends within its
deadline (below the evaluator's ``alert_send_timeout``); an attempt past its timeout is cut and
counts as a temporary failure; a temporary failure (no connection, a timeout, 429, 5xx, an SMTP
4xx) is tried again after the receiver's Retry-After when it gave one, otherwise after an
exponential backoff with full jitter (resilience's schedule, so alerts and guarded calls back
off alike). A wait longer than the cap or than what is left of the deadline is not waited for:
the delivery fails at once, with a Retry-After in its details, and the next evaluation sends
again. Nothing raises out of :func:`deliver`; every error it reports has the channel's secrets
masked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from watchkeeper.alerts.notification import Delivery
from watchkeeper.redaction import REDACTED, scrub_urls
from watchkeeper.resilience.policy import RetryPolicy
from watchkeeper.resilience.schedule import Failure, delay_before

Message = TypeVar("Message")
MAX_ERROR_CHARS = 300
_TOKEN_CHARS = 8


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    status: int | None = None
    error: str | None = None
    temporary: bool = False
    """Worth another attempt: the receiver did not (surely) refuse the message for good."""
    retry_after: float | None = None
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scrubber:
    """Masks a channel's secrets (and URL passwords) in any text it reports."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str | None]) -> Scrubber:
        # Longest first, so a secret containing another is masked whole.
        found = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
        return cls(tuple(found))

    @classmethod
    def of_url(cls, url: str, others: Iterable[str | None] = ()) -> Scrubber:
        """For a URL that is itself a secret: the whole of it, its path, its query, and a long
        last path segment (the token of most webhook URLs), wherever a receiver echoes them."""
        parts = urlsplit(url)
        last = parts.path.rstrip("/").rpartition("/")[2]
        pieces = [url, parts.query, last if len(last) >= _TOKEN_CHARS else None]
        pieces.append(parts.path if len(parts.path) > 1 else None)
        return cls.of([*pieces, *others])

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = scrub_urls(text)
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 1] + "…"
        return text


def describe(error: BaseException) -> str:
    """``ConnectError: [Errno 111] Connection refused``, or the class name alone."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


async def deliver(
    channel: str,
    prepare: Callable[[], Message],
    attempt: Callable[[Message], Awaitable[Outcome]],
    policy: RetryPolicy,
    timeout: float,
    deadline: float,
    scrub: Scrubber,
) -> Delivery:
    """Build the message once with ``prepare``, then run ``attempt`` with it until it delivers,
    fails for good, the attempts are spent, or ``deadline`` seconds have passed."""
    try:
        message = prepare()
    except Exception as error:  # whatever a notification holds, the evaluator gets a Delivery
        return Delivery(channel, False, 0, error=scrub(f"no message: {describe(error)}"))
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    outcome = Outcome(False, error="not attempted")
    made = 0
    details: dict[str, str] = {}
    while made < policy.attempts:
        made += 1
        this_timeout = min(timeout, ends - loop.time())
        try:
            async with asyncio.timeout(this_timeout):
                outcome = await attempt(message)
        except TimeoutError:
            outcome = Outcome(False, error=f"no answer within {this_timeout:.3g} s", temporary=True)
        except Exception as error:  # a channel reports its failures, it never raises them
            outcome = Outcome(False, error=describe(error))
        if outcome.delivered or not outcome.temporary or made == policy.attempts:
            break
        failure = Failure(
            outcome.error or "failed",
            acted_on=False,
            retryable=True,
            status=outcome.status,
            retry_after=outcome.retry_after,
        )
        wait = delay_before(made, failure, policy)
        if wait is None or loop.time() + wait >= ends:
            # Not waited for: the next evaluation sends again.
            if outcome.retry_after is not None:
                details["retry_after_seconds"] = f"{outcome.retry_after:g}"
            break
        await asyncio.sleep(wait)
    details.update(outcome.details)
    if outcome.delivered:
        return Delivery(channel, True, made, status=outcome.status, details=details)
    return Delivery(
        channel,
        False,
        made,
        error=scrub(outcome.error or "failed"),
        status=outcome.status,
        details=details,
    )
