"""The dashboard's alerts view in a real Chromium: a firing alert acknowledged and silenced from
the page, the history, and the rule editor's preview of where a threshold would have fired."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.support import drops
from tests.dashboard.conftest import browser, log_in, screenshots, stray_words
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store

__all__ = ["browser", "screenshots"]

KEY = "dashboard-alerts-key-0123456789"
RULE = {
    "name": "Dropping",
    "signal": {"kind": "recorder_drops"},
    "thresholds": {"warning": 0},
    "channels": {"warning": [["ops"]]},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"default_rules": False, "rules": [RULE]}), encoding="utf-8")
    path = tmp_path / "alerts.db"
    settings = load_settings(
        sqlite_path=path,
        api_keys=[KEY],
        alert_interval=1.0,
        alert_rules_file=rules,
        alert_channels='{"ops": {"kind": "recording"}}',
    )
    live = LiveServer(create_app(settings)).start()
    store = open_store(load_settings(sqlite_path=path))
    try:
        drops(store, time.time() - 120, 2)
    finally:
        store.close()

    def firing() -> bool:
        body = httpx.get(f"{live.url}/api/v1/alerts", headers={"X-API-Key": KEY}).json()
        return any(alert["state"] == "firing" for alert in body["alerts"])

    try:
        wait_until(firing, 60, "the alert to fire")
        yield live.url
    finally:
        live.stop()


def test_alerts_view_acknowledges_silences_and_previews(
    browser: Any, server: str, screenshots: Path
) -> None:
    page = log_in(browser, server + "/", KEY)
    page.goto(server + "/#/alerts")
    page.wait_for_selector("#active-alerts td:has-text('Dropping')")
    row = page.locator("#active-alerts tr", has_text="Dropping")
    assert "firing" in row.inner_text()
    assert row.locator(".badge.warn").inner_text() == "warning"
    page.fill("#ack-note", "looking into it")
    row.locator("button[data-ack]").click()
    page.wait_for_selector("#active-alerts td:has-text('looking into it')")
    page.locator("#active-alerts tr", has_text="Dropping").locator("button[data-silence]").click()
    page.wait_for_selector("td:has-text('alertname=Dropping')")
    assert page.locator("h3:has-text('History') + div td:has-text('Dropping')").count() == 1
    page.fill("#rule-json", json.dumps({**RULE, "name": "Previewed"}))
    page.click("#rule-preview-button")
    page.wait_for_selector("#rule-preview svg")
    assert page.locator("#rule-preview .would-fire").count() >= 1
    assert "the thresholds are crossed at" in page.inner_text("#preview-summary")
    page.screenshot(path=screenshots / "alerts.png", full_page=True)
    page.click("#rule-save")
    page.wait_for_selector("td:has-text('Previewed')")
    assert stray_words(page) == []
    assert page.errors == []
