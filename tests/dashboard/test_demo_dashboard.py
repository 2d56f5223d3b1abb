"""The dashboard on the demo's own data: every page shows it, and the live feed moves."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import log_in
from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.demo.app import build_app
from watchkeeper.demo.services import FaultSchedule
from watchkeeper.demo.traffic import TrafficStats, drive
from watchkeeper.recording.default import set_recorder
from watchkeeper.testing.fake_ai import FakeAIServer

KEY = "demo-dashboard-key-0123456789"
PAGES = {
    "overview": "#health >> text=openai",
    "integrations": "text=pinecone",
    "routes": "#main td:has-text('/api/guidance')",
    "sessions": "text=session-00001",
    # The speech outage is in every cycle; the other failures are left to chance.
    "errors": "text=ServiceTimeout",
    "issues": "text=minimum_score",
    "tools": "text=search_docs",
    "queues": "text=avatar_jobs",
    "costs": "text=gpt-4o-mini",
    "recorder": "text=flushed",
}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        sqlite_path=tmp_path / "demo.db",
        api_keys=[KEY],
        flush_interval=0.2,
        service="guidance-demo",
    )
    # A short cycle, so a few seconds of traffic include the flaky period of the chart service.
    llm = FakeAIServer(seed=3, latency=0.05, token_interval=0.002, output_tokens=40).start()
    app, _ = build_app(settings, llm.openai_base_url, FaultSchedule(cycle_seconds=8))
    server = LiveServer(app).start()
    try:
        # Its own thread: Playwright's sync API keeps an event loop on this one.
        traffic = threading.Thread(
            target=asyncio.run, args=(drive(server.url, rate=12, duration=8, stats=TrafficStats()),)
        )
        traffic.start()
        traffic.join(60)
        yield server.url
    finally:
        server.stop()
        llm.stop()
        set_recorder(None)


def test_every_page_shows_the_demo(browser: Any, demo: str, screenshots: Path) -> None:
    page = log_in(browser, demo + "/watchkeeper/", KEY, viewport={"width": 1366, "height": 900})
    for name, marker in PAGES.items():
        page.goto(f"{demo}/watchkeeper/#/{name}")
        page.wait_for_selector(marker, timeout=15_000)
        page.screenshot(path=str(screenshots / f"demo-{name}.png"), full_page=True)
    page.goto(f"{demo}/watchkeeper/#/overview")
    page.wait_for_selector(".chart canvas", timeout=15_000)
    page.screenshot(path=str(screenshots / "demo-overview.png"), full_page=True)
    page.goto(f"{demo}/watchkeeper/#/sessions")
    page.click("a:text-is('session-00001')")
    page.wait_for_selector("#waterfall")
    assert page.locator(".wf-row").count() >= 5
    page.wait_for_selector("text=question")
    page.screenshot(path=str(screenshots / "demo-session.png"), full_page=True)
    assert page.errors == []
    shutil.copy(screenshots / "demo-overview.png", screenshots / "readme-dashboard.png")
