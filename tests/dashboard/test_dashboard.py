"""The dashboard end to end: login, every page, live updates, a session timeline, XSS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import API_KEY, fill
from tests.dashboard.conftest import log_in
from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.model.events import LogLevel, LogRecord, SpanKind
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

XSS = "<script>alert(1)</script>"
PAGES = {
    "overview": "#stat-rps",
    "integrations": "text=openai",
    "routes": "text=POST /api/guidance",
    "sessions": "text=s-0",
    "errors": "text=TimeoutError",
    "issues": "text=0.41 is below 0.65",
    "tools": "text=search_docs",
    "queues": "text=No queue activity",
    "costs": "text=gpt-4o-mini",
    "traces": "text=POST /api/guidance",
    "recorder": "#main h2:text-is('Recorder')",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    settings = load_settings(sqlite_path=tmp_path / "dashboard.db", api_keys=[API_KEY])
    store = open_store(settings)
    now = time.time()
    fill(store, now)
    store.write(
        batch_of([span(now - 30, 0.2, kind=SpanKind.INTEGRATION, name=XSS, session_id=XSS)])
    )
    live = LiveServer(create_app(settings, store=store)).start()
    try:
        yield live.url, store
    finally:
        live.stop()
        store.close()


def logged_in(browser: Any, url: str, **context: Any) -> Any:
    return log_in(browser, url + "/", API_KEY, **context)


def test_nothing_is_shown_without_a_valid_key(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, _ = server
    page = browser.new_page()
    page.goto(url + "/")
    assert page.is_visible("#login")
    assert not page.is_visible("#app")
    page.fill("#api-key", "wrong-key")
    page.click("button[type=submit]")
    page.wait_for_selector("text=That key is not valid.")
    assert not page.is_visible("#app")
    page.close()


def test_every_page_shows_the_data(
    browser: Any, server: tuple[str, SqlStore], screenshots: Path
) -> None:
    url, _ = server
    page = logged_in(browser, url, viewport={"width": 1280, "height": 900})
    for name, marker in PAGES.items():
        page.goto(f"{url}/#/{name}")
        page.wait_for_selector(marker, timeout=10_000)
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    page.goto(f"{url}/#/overview")
    page.wait_for_selector(".chart canvas", timeout=10_000)
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    assert page.errors == []


def test_a_session_timeline_and_a_trace(
    browser: Any, server: tuple[str, SqlStore], screenshots: Path
) -> None:
    url, _ = server
    page = logged_in(browser, url)
    page.goto(f"{url}/#/sessions")
    page.click("a:text-is('s-0')")
    page.wait_for_selector("#waterfall")
    assert page.locator(".wf-row").count() == 90
    assert page.is_visible("text=Will I move?")
    page.screenshot(path=str(screenshots / "session.png"))
    page.locator(".wf-name").first.click()
    page.click("#span-detail a[href^='#/traces/']")
    page.wait_for_selector("text=3 spans")
    assert page.locator(".wf-row").count() == 3


def test_a_session_id_of_two_organisations_opens_the_one_chosen(
    browser: Any, server: tuple[str, SqlStore]
) -> None:
    url, store = server
    now = time.time()
    store.write(
        batch_of(
            [span(now - at, 0.1, name=f"{org} step", session_id="shared", org_id=org)
             for org, at in (("acme", 40), ("globex", 20))],
            logs=[LogRecord(now - 30, LogLevel.INFO, "app", f"{org} said hello", org_id=org,
                            session_id="shared") for org in ("acme", "globex")],
        )
    )  # fmt: skip
    page = logged_in(browser, url)
    page.goto(f"{url}/#/sessions?q=shared")
    page.wait_for_selector("tr:has-text('globex') a:text-is('shared')")
    # The older one, which the session's id alone would not open.
    page.click("tr:has-text('acme') a:text-is('shared')")
    page.wait_for_selector("#related-logs >> text=acme said hello")
    assert page.is_visible("text=organisation acme")
    assert not page.is_visible("text=globex said hello")
    assert page.locator(".wf-row").count() == 1
    assert page.errors == []


def test_a_new_span_arrives_live_without_reload(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, store = server
    page = logged_in(browser, url)
    page.wait_for_selector("#live.on")
    page.evaluate("window.__marker = 'same page'")
    store.write(batch_of([span(time.time(), 0.05, name="POST /api/live-check")]))
    page.wait_for_selector("#live-spans >> text=POST /api/live-check", timeout=15_000)
    # The charts are rebuilt from fresh data on the next live figures message.
    page.evaluate("document.getElementById('overview-charts').dataset.stale = 'yes'")
    stale = "document.getElementById('overview-charts').dataset.stale === 'yes'"
    deadline = time.monotonic() + 15
    while page.evaluate(stale) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert not page.evaluate(stale), "the charts were not refreshed by the live feed"
    page.wait_for_selector("#overview-charts canvas")
    assert page.locator("#overview-charts canvas").count() >= 3
    assert page.evaluate("window.__marker") == "same page"


def test_names_from_users_render_as_text(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, _ = server
    page = logged_in(browser, url)
    page.goto(f"{url}/#/costs")
    page.goto(f"{url}/#/sessions")
    page.wait_for_selector(f"a:text-is('{XSS}')")
    page.goto(f"{url}/#/integrations")
    page.wait_for_selector(f"a:text-is('{XSS}')")
    assert page.locator("script:text('alert(1)')").count() == 0
    assert page.errors == []


def test_phone_width_and_dark_theme(
    browser: Any, server: tuple[str, SqlStore], screenshots: Path
) -> None:
    url, _ = server
    page = logged_in(browser, url, viewport={"width": 390, "height": 844}, color_scheme="dark")
    assert not page.is_visible("#nav")
    page.click("#menu")
    assert page.is_visible("#nav")
    page.click("#nav >> text=Sessions")
    page.wait_for_selector("text=s-0")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 21, 27)"
    # Wide tables scroll inside their own box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "phone-dark.png"), full_page=True)
