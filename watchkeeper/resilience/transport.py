"""An httpx transport that gives every request the policy of the integration it calls.

Any httpx-based client gets resilience without wrapping its calls, the OpenAI and Anthropic SDKs
included (``http_client=``; set the SDK's own ``max_retries=0`` so attempts are not multiplied):

    transport = ResilientTransport()  # watchkeeper.resilience.transport2 for httpx2
    client = openai.OpenAI(http_client=httpx2.Client(transport=transport), max_retries=0)

The integration is named from the host, as outbound recording names it (the built-in AI hosts,
``WATCHKEEPER_INTEGRATION_HOSTS``, ``hosts=``), or by a policy's ``hosts``. A response whose
status is worth retrying is retried (its Retry-After honoured) and, once retries are spent,
handed to the client as it came; a request the service may have acted on (a 500, a read timeout)
is retried only for idempotent methods unless the policy says otherwise. A streamed response is
returned as soon as its headers arrive, so a stream is only ever retried before its first byte.
The attempt timeout bounds each of httpx's connect, read, write and pool timeouts (and, for the
async transport, the whole attempt). Cached fallbacks and token limits read answers whole.

The attempts are recorded on the call's integration span: the LLM integration's or the httpx
recording's when they are on, else a span of the transport's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.registry import Resilience
from watchkeeper.resilience.sending import AsyncTransport, BlockingTransport

try:
    import httpx
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError("the resilient transport needs httpx: pip install httpx") from missing


class ResilientTransport(BlockingTransport, httpx.BaseTransport):
    """For ``httpx.Client``; sends through ``wrapped`` (by default ``httpx.HTTPTransport()``)."""

    def __init__(
        self,
        wrapped: httpx.BaseTransport | None = None,
        *,
        hosts: Mapping[str, str] | None = None,
        resilience: Resilience | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(
            wrapped or httpx.HTTPTransport(), hosts=hosts, resilience=resilience, recorder=recorder
        )


class AsyncResilientTransport(AsyncTransport, httpx.AsyncBaseTransport):
    """For ``httpx.AsyncClient``; sends through ``wrapped`` (``httpx.AsyncHTTPTransport()``)."""

    def __init__(
        self,
        wrapped: httpx.AsyncBaseTransport | None = None,
        *,
        hosts: Mapping[str, str] | None = None,
        resilience: Resilience | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(
            wrapped or httpx.AsyncHTTPTransport(),
            hosts=hosts,
            resilience=resilience,
            recorder=recorder,
        )
