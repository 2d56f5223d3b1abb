"""The logs and errors pages in a real Chromium: search and level filter, live tail, error groups
with sparklines and statuses, a group's stack, samples and surrounding logs, and the logs shown on
a trace's and a session's page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import API_KEY, fill
from tests.dashboard.conftest import log_in, stray_words
from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.model.events import LogRecord
from watchkeeper.model.ids import format_trace_id
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright").expect
expect.set_options(timeout=20_000)

TRACE = 0xB00C
TRACEBACK = (
    "Traceback (most recent call last):\n  File \"app/pay.py\", line 9, in charge\nKeyError: 'card'"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    settings = load_settings(sqlite_path=tmp_path / "logs.db", api_keys=[API_KEY])
    store: SqlStore = open_store(settings)
    now = time.time()
    fill(store, now)
    logs = [
        LogRecord(now - 30, 20, "app.chart", "chart computed for user 42", trace_id=TRACE,
                  session_id="s-logs"),
        LogRecord(now - 29, 30, "app.chart", "chart slow: 3012 ms", trace_id=TRACE,
                  session_id="s-logs"),
        LogRecord(now - 28, 40, "app.pay", "payment failed", trace_id=TRACE,
                  exception_type="KeyError", exception=TRACEBACK,
                  frames=(("app.pay", "charge"), ("app.cards", "lookup"))),
        LogRecord(now - 27, 10, "app.debug", "debug detail"),
    ]  # fmt: skip
    failed = span(now - 28, error=True, error_type="KeyError", error_message="'card'",
                  trace_id=TRACE, session_id="s-logs")  # fmt: skip
    store.write(batch_of([failed], logs=logs))
    server = LiveServer(create_app(settings, store=store)).start()
    try:
        yield server.url + "/", store
    finally:
        server.stop()
        store.close()


def test_logs_page_searches_filters_and_follows_new_records(
    browser: Any, served: tuple[str, SqlStore]
) -> None:
    address, store = served
    page = log_in(browser, address, API_KEY)
    page.click("#nav a[href='#/logs']")
    expect(page.locator("#log-list")).to_contain_text("debug detail")

    page.fill("#log-search input[name=q]", "CHART")
    page.click("#log-search button[type=submit]")
    expect(page.locator("#log-count")).to_have_text("3 records")  # the app's warning too
    expect(page.locator("#log-list")).to_contain_text("chart computed for user 42")
    expect(page.locator("#log-list")).not_to_contain_text("payment failed")

    page.select_option("#log-search select[name=level]", "30")
    page.click("#log-search button[type=submit]")
    expect(page.locator("#log-count")).to_have_text("2 records")
    expect(page.locator("#log-list")).not_to_contain_text("chart computed")
    trace_link = page.locator("#log-list a[href='#/traces/" + format_trace_id(TRACE) + "']")
    expect(trace_link).to_have_count(1)

    # Live tail: a record stored after the page was drawn appears without reloading.
    page.fill("#log-search input[name=q]", "")
    page.select_option("#log-search select[name=level]", "")
    page.check("#log-search input[name=tail]")
    page.click("#log-search button[type=submit]")
    expect(page.locator("#log-count")).to_contain_text("following new records")
    store.write(batch_of([], logs=[LogRecord(time.time(), 20, "app", "a fresh line arrives")]))
    expect(page.locator("#log-list")).to_contain_text("a fresh line arrives")
    assert stray_words(page) == []
    assert page.errors == []


def test_errors_page_group_page_and_status(browser: Any, served: tuple[str, SqlStore]) -> None:
    address, _ = served
    page = log_in(browser, address, API_KEY)
    page.click("#nav a[href='#/errors']")
    group_link = page.locator("a.group-title", has_text="KeyError: 'card'").first
    expect(group_link).to_be_visible()
    expect(page.locator("svg.sparkline").first).to_be_visible()
    expect(page.locator("#main")).to_contain_text("chart slow: <num> ms")  # a warning pattern
    log_group = page.locator("tr", has=page.locator("a.group-title", has_text="KeyError")).filter(
        has_text="log"
    )
    log_group.locator("a.group-title").click()

    expect(page.locator("#group-stack")).to_contain_text("app.cards.lookup")
    expect(page.locator("#group-stack li").first).to_have_text("app.cards.lookup")  # innermost
    expect(page.locator("#main")).to_contain_text("payment failed")
    expect(page.locator("#group-logs")).to_contain_text("chart slow: 3012 ms")  # same trace

    page.click("#group-status button[data-status=resolved]")
    expect(page.locator("#group-status .badge")).to_have_text("resolved")
    page.click("#nav a[href='#/errors']")
    page.select_option("select[name=status]", "resolved")
    expect(page.locator("a.group-title")).to_have_count(1)
    assert stray_words(page) == []
    assert page.errors == []


def test_a_status_change_whose_page_was_left_draws_nothing_over_the_next_page(
    browser: Any, served: tuple[str, SqlStore]
) -> None:
    address, _ = served
    page = log_in(browser, address, API_KEY)
    page.goto(address + "#/errors")
    page.locator("a.group-title", has_text="KeyError").first.click()
    expect(page.locator("#group-logs")).to_contain_text("chart slow: 3012 ms")
    # The user marks the group and moves on before the answer comes back.
    page.evaluate(
        """() => {
            document.querySelector("#group-status button[data-status=ignored]").click();
            location.hash = "#/errors";
        }"""
    )
    expect(page.locator("select[name=status]")).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#main h2")).to_have_text("Errors")
    expect(page.locator("#main")).to_contain_text("ignored")
    assert page.errors == []


def test_trace_and_session_pages_show_their_logs(
    browser: Any, served: tuple[str, SqlStore]
) -> None:
    address, _ = served
    page = log_in(browser, address, API_KEY)
    page.goto(address + "#/traces/" + format_trace_id(TRACE))
    expect(page.locator("#related-logs")).to_contain_text("payment failed")
    expect(page.locator("#related-logs")).to_contain_text("chart computed for user 42")
    page.goto(address + "#/sessions/s-logs")
    expect(page.locator("#related-logs")).to_contain_text("chart slow: 3012 ms")
    expect(page.locator("#related-logs")).not_to_contain_text("debug detail")
    assert page.errors == []
