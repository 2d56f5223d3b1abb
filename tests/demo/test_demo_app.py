"""The demo app answers like a real app when resilience refuses a call it has no fallback for."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.demo.app import build_app
from watchkeeper.recording.default import set_recorder
from watchkeeper.resilience import registry
from watchkeeper.testing.fake_ai import FakeAIServer


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(registry, "_default", None)
    settings = load_settings(sqlite_path=tmp_path / "demo.db")
    llm = FakeAIServer(seed=3, latency=0.01, token_interval=0.001, output_tokens=10).start()
    app, _ = build_app(settings, llm.openai_base_url)
    server = LiveServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()
        llm.stop()
        set_recorder(None)


def test_an_open_chart_breaker_without_a_cached_chart_answers_503_with_retry_after(
    demo: str, caplog: pytest.LogCaptureFixture
) -> None:
    question = {"question": "What does this year hold?", "birth_date": "1987-04-12"}
    with httpx.Client(base_url=demo, timeout=60) as client:
        assert client.post("/api/guidance", json=question).status_code == 200
        registry.get_resilience().state.force_open("astrology-api", time.time(), "maintenance")
        # The same birth date is answered from the cached chart; a new one cannot be.
        assert client.post("/api/guidance", json=question).status_code == 200
        caplog.clear()
        refused = client.post("/api/guidance", json={**question, "birth_date": "1990-01-30"})
    assert refused.status_code == 503
    assert refused.json() == {"error": "the astrology-api circuit is open"}
    assert 1 <= int(refused.headers["retry-after"]) <= 5  # the chart breaker's cool-down
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in warnings] == [
        "astrology-api refused for /api/guidance: the astrology-api circuit is open"
    ]
