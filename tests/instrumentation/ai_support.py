"""Helpers shared by the AI client and outbound HTTP instrumentation tests."""

from __future__ import annotations

import time

from watchkeeper.model.events import Span, SpanKind
from watchkeeper.testing.fake_ai import FakeAIServer, ReceivedRequest
from watchkeeper.testing.plugin import RecorderUnderTest

WAIT_SECONDS = 5.0


def integration_spans(
    recorder: RecorderUnderTest, count: int, name: str | None = None
) -> list[Span]:
    """Wait until ``count`` integration spans are written, then return exactly those."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        spans = recorder.recorded_spans(SpanKind.INTEGRATION, name)
        if len(spans) >= count or time.monotonic() > deadline:
            assert len(spans) == count, spans
            return spans
        time.sleep(0.01)


def last_request(server: FakeAIServer) -> ReceivedRequest:
    received = server.received
    assert received, "the fake AI server received nothing"
    return received[-1]


def traceparent_of(span: Span) -> str:
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-01"
