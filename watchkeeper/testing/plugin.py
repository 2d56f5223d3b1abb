"""The pytest plugin installed with Watchkeeper: a ``watchkeeper_recorder`` fixture.

def test_checkout_is_recorded(watchkeeper_recorder):
    with watchkeeper_recorder.span("checkout"):
        ...
    assert watchkeeper_recorder.recorded_spans(name="checkout")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from watchkeeper.config import load_settings
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing.memory import MemorySink


class RecorderUnderTest(Recorder):
    """A recorder writing to a :class:`MemorySink`, with a helper that flushes before reading."""

    def __init__(self) -> None:
        self.memory = MemorySink()
        super().__init__(
            load_settings(flush_interval=0.05, raise_internal_errors=True), sink=self.memory
        )

    def recorded_spans(self, kind: SpanKind | None = None, name: str | None = None) -> list[Span]:
        self.flush()
        return self.memory.spans(kind=kind, name=name)


@pytest.fixture
def watchkeeper_recorder() -> Iterator[RecorderUnderTest]:
    recorder = RecorderUnderTest()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()
