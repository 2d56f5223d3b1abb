"""The resilient transports for httpx2, which the OpenAI and Anthropic SDKs send through
(see :mod:`watchkeeper.resilience.transport`)::

    transport = ResilientTransport()
    client = openai.OpenAI(http_client=httpx2.Client(transport=transport), max_retries=0)
"""

from __future__ import annotations

from collections.abc import Mapping

from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.registry import Resilience
from watchkeeper.resilience.sending import AsyncTransport, BlockingTransport

try:
    import httpx2
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError(
        "the httpx2 resilient transport needs httpx2: pip install httpx2"
    ) from missing


class ResilientTransport(BlockingTransport, httpx2.BaseTransport):
    """For ``httpx2.Client``; sends through ``wrapped`` (``httpx2.HTTPTransport()``)."""

    def __init__(
        self,
        wrapped: httpx2.BaseTransport | None = None,
        *,
        hosts: Mapping[str, str] | None = None,
        resilience: Resilience | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(
            wrapped or httpx2.HTTPTransport(), hosts=hosts, resilience=resilience, recorder=recorder
        )


class AsyncResilientTransport(AsyncTransport, httpx2.AsyncBaseTransport):
    """For ``httpx2.AsyncClient``; sends through ``wrapped`` (``httpx2.AsyncHTTPTransport()``)."""

    def __init__(
        self,
        wrapped: httpx2.AsyncBaseTransport | None = None,
        *,
        hosts: Mapping[str, str] | None = None,
        resilience: Resilience | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(
            wrapped or httpx2.AsyncHTTPTransport(),
            hosts=hosts,
            resilience=resilience,
            recorder=recorder,
        )
