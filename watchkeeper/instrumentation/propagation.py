"""What the outbound-call integrations share: trace-context headers and who records a call.

An LLM client (openai, anthropic) sends its HTTP requests through httpx. Both layers are
instrumented, so without coordination one API call would be recorded twice: once as the LLM span,
with model and tokens, and once as a bare HTTP span. The LLM integration therefore marks the
context with its span while the client sends; the HTTP layer then records nothing and only
propagates that span's ``traceparent``, so the provider sees the span that carries the tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from watchkeeper.model.events import Span

TRACEPARENT = "traceparent"

recording_span: ContextVar[Span | None] = ContextVar("watchkeeper_recording_span", default=None)
"""The span already recording the outbound call being made in this context, if any."""


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` header naming ``span`` as the caller (always sampled)."""
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-01"


@contextmanager
def recorded_by(span: Span) -> Iterator[None]:
    """While inside, HTTP calls belong to ``span``: propagate it, do not record them again."""
    token = recording_span.set(span)
    try:
        yield
    finally:
        recording_span.reset(token)


def when_closed(response: Any, callback: Callable[[], None]) -> None:
    """Run ``callback`` once after an httpx response (sync or async) is closed.

    The close method is wrapped on the instance rather than the stream replaced: httpx checks
    the stream's class, and a response is closed by every way of finishing with it (reading to
    the end, ``close()``, leaving ``with client.stream(...)``).
    """
    original_aclose = response.aclose
    original_close = response.close

    async def aclose() -> None:
        try:
            await original_aclose()
        finally:
            callback()

    def close() -> None:
        try:
            original_close()
        finally:
            callback()

    response.aclose = aclose
    response.close = close
