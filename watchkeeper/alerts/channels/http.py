"""One attempt at posting a body over HTTP, as the webhook, Slack and Alertmanager channels do.

The answer decides what comes next: 2xx delivered; 408, 429 and 5xx temporary (with the
receiver's Retry-After, if any); any other status a refusal not worth repeating (a wrong URL, a
payload the receiver rejects); no connection or no answer in time, temporary. Redirects are not
followed: a receiver that moved is a configuration to fix, not a place to post alerts blindly.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from watchkeeper.alerts.channels.attempts import Outcome, describe
from watchkeeper.model.outbound import OWN_REQUEST
from watchkeeper.resilience.schedule import parse_retry_after

_TEMPORARY_STATUSES = frozenset({408, 429})
_BODY_CHARS = 200


class HttpPoster:
    """Posts bodies with one client, made on first use (on the loop that sends) and closed."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(
                url, content=body, headers=dict(headers), extensions={OWN_REQUEST: True}
            )
        except httpx.TransportError as error:  # timeouts included
            return Outcome(False, error=describe(error), temporary=True)
        return outcome_of(response)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def outcome_of(response: httpx.Response) -> Outcome:
    status = response.status_code
    if response.is_success:
        return Outcome(True, status=status)
    text = response.text.strip()
    error = f"status {status}: {text[:_BODY_CHARS]}" if text else f"status {status}"
    if status in _TEMPORARY_STATUSES or status >= 500:
        return Outcome(
            False,
            status=status,
            error=error,
            temporary=True,
            retry_after=parse_retry_after(response.headers),
        )
    return Outcome(False, status=status, error=error)
