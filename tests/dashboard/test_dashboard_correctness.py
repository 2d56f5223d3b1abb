"""The dashboard shows what the data says: rates, request costs, charts with gaps, span details,
trace search and click-through, readable badges, no stray "null", and no key in any URL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.api.conftest import API_KEY, fill
from tests.dashboard.conftest import log_in, stray_words
from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright").expect
expect.set_options(timeout=15_000)

DETAIL_TRACE = 0xDE7A11
SEARCHED_TRACE = 0x5EA4C4
STACK = 'Traceback (most recent call last):\n  File "app.py", line 42, in guide\nBoom: exploded'
PAGES = {
    "overview": "#overview-charts canvas",
    "integrations": "text=openai",
    "routes": "text=POST /api/guidance",
    "traces": "#trace-list td",
    "sessions": "text=s-0",
    "errors": "text=TimeoutError",
    "issues": "text=0.41 is below 0.65",
    "tools": "text=search_docs",
    "queues": "text=No queue activity",
    "costs": "text=gpt-4o-mini",
    "recorder": "#main h2:text-is('Recorder')",
}


def minute_start(minutes_ago: int) -> float:
    now = time.time()
    return now - now % 60 - 60 * minutes_ago


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(sqlite_path=tmp_path / "correct.db", api_keys=[API_KEY])
    store: SqlStore = open_store(settings)
    now = time.time()
    fill(store, now)  # 60 requests over the last five minutes
    store.write(
        batch_of(
            [
                # A failed request and the priced AI call under it.
                span(
                    now - 40,
                    0.9,
                    name="POST /api/detail",
                    trace_id=DETAIL_TRACE,
                    span_id=0xD1,
                    error=True,
                    error_type="Boom",
                    error_message="upstream exploded",
                    attributes={"status_code": 503, "method": "POST", "stack": STACK},
                ),
                span(
                    now - 39.9,
                    0.5,
                    kind=SpanKind.INTEGRATION,
                    name="openai",
                    operation="chat",
                    trace_id=DETAIL_TRACE,
                    span_id=0xD2,
                    parent_id=0xD1,
                    model="gpt-4o",
                    input_tokens=1234,
                    output_tokens=56,
                    cost=0.0123,
                    attributes={"status_code": 200, "finish_reason": "stop"},
                ),
                # One user and session nobody else has.
                span(
                    now - 50,
                    0.2,
                    name="GET /api/profile",
                    trace_id=SEARCHED_TRACE,
                    user_id="searched-user",
                    session_id="searched-session",
                ),
                # Two lone minutes well before the rest: gaps between them and the recent data.
                span(minute_start(30) + 5, 0.3, name="POST /api/guidance"),
                span(minute_start(20) + 5, 0.3, name="POST /api/guidance"),
            ]
        )
    )
    live = LiveServer(create_app(settings, store=store)).start()
    try:
        yield live.url
    finally:
        live.stop()
        store.close()


def logged_in(browser: Any, url: str, **context: Any) -> Any:
    return log_in(browser, url + "/", API_KEY, **context)


def open_page(page: Any, url: str, hash_: str, marker: str) -> None:
    page.goto(f"{url}/#/{hash_}")
    page.wait_for_selector(marker, timeout=15_000)


def test_no_page_shows_null_undefined_or_nan(browser: Any, server: str, screenshots: Path) -> None:
    page = logged_in(browser, server, viewport={"width": 1366, "height": 900})
    for name, marker in PAGES.items():
        open_page(page, server, name, marker)
        assert stray_words(page) == [], name
    # The trace and session views, a span's details, an API error shown on the page.
    # Markers of each view's own heading: the previous view's waterfall may still be there.
    for hash_, marker in (
        (f"traces/{DETAIL_TRACE:032x}", f"h2:has-text('{DETAIL_TRACE:032x}')"),
        ("sessions/s-0", "h2:has-text('Session s-0')"),
        ("sessions/searched-session", "h2:has-text('Session searched-session')"),
    ):
        open_page(page, server, hash_, marker)
        page.locator(".wf-name").first.click()
        page.wait_for_selector("#span-detail dl")
        assert stray_words(page) == [], hash_
    open_page(page, server, "traces?trace_id=nonsense", ".card.error")
    assert "query.trace_id" in page.inner_text(".card.error")
    assert stray_words(page) == []
    assert page.errors == []


def test_requests_per_second_is_over_the_time_holding_data(browser: Any, server: str) -> None:
    page = logged_in(browser, server)
    open_page(page, server, "overview", "#stat-rps")
    # 64 requests over about thirty minutes of data (the first in the minute that began 30
    # minutes ago), not over the whole hour the range spans.
    rate = float(page.inner_text("#stat-rps"))
    assert round(64 / (31 * 60), 2) <= rate <= round(64 / (30 * 60), 2)
    assert re.match(r"over 3\d min of data", page.inner_text("#stats .stat .note"))


def test_charts_are_scaled_to_the_data_and_leave_gaps(
    browser: Any, server: str, screenshots: Path
) -> None:
    page = logged_in(browser, server, viewport={"width": 1366, "height": 900})
    open_page(page, server, "overview", "#overview-charts canvas")
    expect(page.locator("#overview-charts .chart[data-drawn]")).to_have_count(3)
    drawn = page.evaluate(
        """() => [...document.querySelectorAll('#overview-charts .chart')].map((box) => ({
            title: box.querySelector('.title').textContent,
            xs: box.plot.data[0], ys: box.plot.data.slice(1),
            x: [box.plot.scales.x.min, box.plot.scales.x.max],
            y: [box.plot.scales.y.min, box.plot.scales.y.max],
            spanGaps: box.plot.series.slice(1).map((s) => s.spanGaps),
        }))"""
    )
    # The fixture's minutes, allowing for a minute that began since it wrote them.
    first_minutes, last_minute = {minute_start(30), minute_start(31)}, minute_start(0)
    for chart in drawn:
        xs = chart["xs"]
        # One x per minute from the first minute with data to the last, a minute apart.
        assert xs[0] in first_minutes
        assert last_minute - 120 <= xs[-1] <= last_minute
        assert all(b - a == 60 for a, b in pairwise(xs))
        # The x axis spans the data (half a bucket either side), not years.
        assert chart["x"] == [xs[0] - 30, xs[-1] + 30]
        assert chart["spanGaps"] == [False] * len(chart["ys"])
        values = chart["ys"][0]
        # Minutes without data are gaps (null), never zeros.
        assert values[1] is None
        assert values[10] is not None
        assert None in values[11:20]
        highest = max(value for series in chart["ys"] for value in series if value is not None)
        assert chart["y"][0] == 0
        assert highest < chart["y"][1] <= highest * 1.2
    requests, _latency, cost = drawn
    assert requests["title"] == "Requests per minute"
    assert requests["ys"][0][0] == 1
    # Cost per minute is the cost of the AI calls under that minute's requests.
    total_cost = sum(value for value in cost["ys"][0] if value is not None)
    assert total_cost == pytest.approx(60 * 0.0004 + 0.0123, rel=1e-6)
    assert cost["ys"][0][0] == 0  # a request without AI calls costs nothing: a zero, not a gap
    page.screenshot(path=str(screenshots / "overview-gaps.png"), full_page=True)


def test_a_span_shows_its_details_when_clicked(
    browser: Any, server: str, screenshots: Path
) -> None:
    page = logged_in(browser, server, viewport={"width": 1366, "height": 900})
    open_page(page, server, f"traces/{DETAIL_TRACE:032x}", "#waterfall")
    assert not page.is_visible("#span-detail")
    page.click(".wf-name:has-text('openai')")
    detail = page.locator("#span-detail")
    detail.wait_for()
    fields = dict(
        zip(
            detail.locator("dt").all_inner_texts(),
            detail.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert fields["Status code"] == "200"
    assert fields["Model"] == "gpt-4o"
    assert fields["Tokens"] == "1,234 in / 56 out"
    assert fields["Cost"] == "$0.0123"
    assert fields["Error message"] == "\N{EN DASH}"  # what the page shows for "none"
    assert "finish_reason" in detail.locator("table.attributes").inner_text()

    page.click(".wf-name:has-text('POST /api/detail')")
    page.wait_for_selector("#span-detail h3:has-text('POST /api/detail')")
    fields = dict(
        zip(
            detail.locator("dt").all_inner_texts(),
            detail.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert fields["Status code"] == "503"
    assert fields["Error type"] == "Boom"
    assert fields["Error message"] == "upstream exploded"
    assert fields["Cost (its AI calls)"] == "$0.0123"
    assert detail.locator(".badge.error").count() == 1
    assert detail.locator("pre.stack").inner_text() == STACK
    assert "method" in detail.locator("table.attributes").inner_text()
    assert "stack" not in detail.locator("table.attributes").inner_text()
    page.screenshot(path=str(screenshots / "span-detail.png"), full_page=True)
    assert page.errors == []


def trace_rows(page: Any, expected: int | None = None) -> list[str]:
    """The trace list's rows, once there are ``expected`` of them."""
    rows = page.locator("#trace-list tbody tr")
    if expected is not None:
        expect(rows).to_have_count(expected)
    texts: list[str] = rows.all_inner_texts()
    return texts


def search(page: Any, field: str, value: str) -> None:
    page.fill(f"#trace-search input[name={field}]", value)
    page.click("#trace-search button[type=submit]")
    page.wait_for_url(re.compile(f"#/traces\\?.*{field}="))


def test_the_trace_list_is_searchable_by_user_session_and_trace_id(
    browser: Any, server: str, screenshots: Path
) -> None:
    page = logged_in(browser, server, viewport={"width": 1366, "height": 900})
    open_page(page, server, "traces", "#trace-list td")
    trace_rows(page, 64)  # every request, the lone ones included

    search(page, "user_id", "searched-user")
    trace_rows(page, 1)
    (row,) = trace_rows(page)
    assert "GET /api/profile" in row
    assert f"{SEARCHED_TRACE:032x}"[-8:] in row
    page.screenshot(path=str(screenshots / "traces-search.png"), full_page=True)

    open_page(page, server, "traces", "#trace-list td")
    trace_rows(page, 64)
    search(page, "user_id", "u-1")
    trace_rows(page, 20)
    assert all("u-1" in row and "profile" not in row for row in trace_rows(page))

    open_page(page, server, "traces", "#trace-list td")
    trace_rows(page, 64)
    search(page, "session_id", "searched-session")
    trace_rows(page, 1)
    assert "GET /api/profile" in trace_rows(page)[0]

    open_page(page, server, "traces", "#trace-list td")
    trace_rows(page, 64)
    search(page, "trace_id", f"{DETAIL_TRACE:032X}")  # pasted in capitals
    trace_rows(page, 1)
    assert "POST /api/detail" in trace_rows(page)[0]
    page.click("#trace-list tbody a:text-is('POST /api/detail')")
    page.wait_for_selector("text=2 spans")

    open_page(page, server, "traces?user_id=nobody-at-all", "#trace-list .empty")
    assert page.errors == []


def test_routes_and_errors_lead_to_their_traces(browser: Any, server: str) -> None:
    page = logged_in(browser, server)
    open_page(page, server, "routes", "text=POST /api/guidance")
    page.click("#main a:text-is('POST /api/guidance')")
    page.wait_for_selector("#trace-filters")
    assert "name=POST+%2Fapi%2Fguidance" in page.evaluate("location.hash")
    trace_rows(page, 62)
    assert {row.split("\t")[1] for row in trace_rows(page)} == {"POST /api/guidance"}

    # The route's error rate leads to its failed traces only.
    open_page(page, server, "routes", "text=POST /api/guidance")
    page.click("#main a[title='Traces that failed']")
    trace_rows(page, 6)
    assert all("error" in row for row in trace_rows(page))

    # An error group leads to the traces where that error happened: its samples'.
    open_page(page, server, "errors", "text=upstream exploded")
    page.click("#main a.group-title:has-text('upstream exploded')")
    page.wait_for_selector("#group-stack")
    trace = f"{DETAIL_TRACE:032x}"
    page.locator(f"#main a[href='#/traces/{trace}']").first.click()
    page.wait_for_selector(f"h2:has-text('{trace}')")
    page.wait_for_selector("text=POST /api/detail")


def test_route_costs_are_those_of_their_ai_calls(browser: Any, server: str) -> None:
    page = logged_in(browser, server)
    open_page(page, server, "routes", "text=POST /api/detail")
    rows = {
        row.split("\t")[0]: row.split("\t")
        for row in page.locator("#main tbody tr").all_inner_texts()
    }
    assert rows["POST /api/guidance"][-1] == "$0.0240"  # 60 calls at $0.0004
    assert rows["POST /api/detail"][-1] == "$0.0123"
    assert rows["GET /api/profile"][-1] == "$0.0000"


CONTRAST = """(selector) => [...document.querySelectorAll(selector)].map((node) => {
    const rgb = (color) => color.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const channel = (value) => { value /= 255; return value <= 0.03928 ? value / 12.92
        : ((value + 0.055) / 1.055) ** 2.4; };
    const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g)
        + 0.0722 * channel(b);
    const style = getComputedStyle(node);
    const [a, b] = [luminance(rgb(style.color)), luminance(rgb(style.backgroundColor))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
})"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_badges_are_readable(browser: Any, server: str, scheme: str) -> None:
    page = logged_in(browser, server, color_scheme=scheme)
    open_page(page, server, "traces?errors_only=true", "#trace-list .badge.error")
    ratios = page.evaluate(CONTRAST, ".badge")
    open_page(page, server, "errors", "text=TimeoutError")
    ratios += page.evaluate(CONTRAST, ".badge")
    assert len(ratios) >= 8
    assert min(ratios) >= 4.5  # WCAG AA for text


def test_no_url_the_page_requests_holds_the_key(browser: Any, server: str) -> None:
    page = logged_in(browser, server)
    page.wait_for_selector("#live.on", timeout=15_000)
    for name, marker in PAGES.items():
        open_page(page, server, name, marker)
    sockets = [url for url in page.urls if url.startswith("ws")]
    assert sockets
    assert all(url.endswith("/api/v1/live") for url in sockets)
    assert len(page.urls) > 20
    assert not [url for url in page.urls if API_KEY in unquote(url)]
    # The live feed authenticated with the session cookie: the key is in no frame either.
    assert not [frame for frame in page.frames_sent if API_KEY in frame]
