"""An integration's dashboard page shows its breaker's timeline, transitions and policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import watchkeeper
from tests.dashboard.conftest import log_in, stray_words
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.recording.default import set_recorder
from watchkeeper.resilience import registry

KEY = "dashboard-resilience-key"


@pytest.fixture
def app_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(registry, "_default", None)
    settings = load_settings(
        sqlite_path=tmp_path / "wk.db",
        api_keys=[KEY],
        flush_interval=0.05,
        resilience_policies={
            "speech": {
                "retry": {"attempts": 1},
                "breaker": {"consecutive_failures": 2, "cool_down": 600},
            }
        },
    )
    app = FastAPI()
    watchkeeper.instrument(app, settings, outbound=False)
    server = LiveServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()
        set_recorder(None)


def refused() -> None:
    raise ConnectionRefusedError("the speech service is down")


def test_the_breaker_timeline_and_the_effective_policy(
    browser: Any, app_url: str, screenshots: Path
) -> None:
    speech = watchkeeper.resilient("speech")
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            speech.call(refused)

    def stored() -> list[Any]:
        answer = httpx.get(
            f"{app_url}/watchkeeper/api/v1/metrics/resilience.circuit",
            headers={"Authorization": f"Bearer {KEY}"},
        )
        points: list[Any] = answer.json()
        return points

    wait_until(lambda: bool(stored()), what="the transition to be stored")

    page = log_in(browser, f"{app_url}/watchkeeper/", KEY)
    page.goto(f"{app_url}/watchkeeper/#/integrations/speech")
    page.wait_for_selector(".breaker .segment[data-state=open]")
    states = page.eval_on_selector_all(
        ".breaker .segment", "nodes => nodes.map(n => n.dataset.state)"
    )
    assert states == ["closed", "open"]
    body = page.inner_text("#main")
    assert "2 failures in a row" in body
    assert "Effective policy" in body
    assert "consecutive_failures: 2" in body
    assert stray_words(page) == []
    assert page.errors == []
    page.screenshot(path=str(screenshots / "resilience-integration.png"), full_page=True)
