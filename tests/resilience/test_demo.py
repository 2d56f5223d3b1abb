"""The demo's flaky services are guarded: its traffic shows retries, an open breaker, answers
from fallbacks (the cached chart, the spoken notice) and the breaker closing again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.demo.app import build_app
from watchkeeper.demo.services import FaultSchedule
from watchkeeper.demo.traffic import TrafficStats, drive
from watchkeeper.model.events import MetricPoint, Span, SpanKind
from watchkeeper.recording import attributes
from watchkeeper.recording.default import set_recorder
from watchkeeper.resilience import registry
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.memory import MemorySink


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemorySink]:
    monkeypatch.setattr(registry, "_default", None)
    settings = load_settings(sqlite_path=tmp_path / "demo.db", flush_interval=0.1)
    llm = FakeAIServer(seed=3, latency=0.02, token_interval=0.001, output_tokens=20).start()
    # Two short cycles: each has a flaky chart period and a speech outage, then recovery.
    app, recorder = build_app(settings, llm.openai_base_url, FaultSchedule(cycle_seconds=8))
    sink = MemorySink()
    recorder.observers.append(sink.write)
    server = LiveServer(app).start()
    try:
        asyncio.run(drive(server.url, rate=25, duration=16, stats=TrafficStats()))
        recorder.flush()
        yield sink
    finally:
        server.stop()
        llm.stop()
        set_recorder(None)


def test_the_demo_shows_retries_an_open_breaker_fallbacks_and_recovery(
    recorded: MemorySink,
) -> None:
    spans = recorded.spans(kind=SpanKind.INTEGRATION)
    charts = [span for span in spans if span.name == "astrology-api"]
    speech = [span for span in spans if span.name == "elevenlabs"]

    def having(group: list[Span], key: str) -> list[Span]:
        return [span for span in group if span.attributes and key in span.attributes]

    assert having(charts, attributes.RESILIENCE_RETRIES), "no chart call was retried"
    fallbacks = {
        (span.name, (span.attributes or {})[attributes.RESILIENCE_FALLBACK])
        for span in having(spans, attributes.RESILIENCE_FALLBACK)
    }
    assert ("elevenlabs", "function") in fallbacks
    assert having(speech, attributes.RESILIENCE_REJECTED), "the open breaker refused nothing"

    moves = [
        ((point.attributes or {}).get("integration"), (point.attributes or {}).get("to"))
        for point in recorded.metrics
        if isinstance(point, MetricPoint) and point.name == attributes.CIRCUIT_METRIC
    ]
    assert ("elevenlabs", "open") in moves
    assert ("elevenlabs", "closed") in moves  # recovery once the outage ended
