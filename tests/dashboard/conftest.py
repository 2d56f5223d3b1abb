"""A real Chromium (Debian's) driven by Playwright against a real Watchkeeper server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
# Without these, Chromium keeps trying to reach Google's services, which this sandbox refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Per module: Playwright's sync API keeps an event loop running on this thread while it is
    open, which would break later tests that call ``asyncio.run``."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does this)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


STRAY_WORDS = re.compile(r"\b(null|undefined|NaN|Infinity)\b|\[object Object\]")


def stray_words(page: Any) -> list[str]:
    """Words a script shows when it renders a missing value instead of saying it is missing."""
    return [match.group(0) for match in STRAY_WORDS.finditer(page.inner_text("body"))]


def log_in(browser: Any, address: str, key: str, **context: Any) -> Any:
    """A new page, logged in at ``address``.

    ``page.errors`` collects script errors and dialogs; ``page.urls`` every URL the page asked
    for, WebSockets included; ``page.frames_sent`` what it sent over WebSockets.
    """
    page = browser.new_context(**context).new_page()
    # Generous: on a 2-core machine under a full test run, a first page load can take half a
    # minute. Each wait still ends as soon as its element is there.
    page.set_default_timeout(90_000)
    errors: list[str] = []
    urls: list[str] = []
    frames_sent: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append("dialog opened: " + dialog.message))
    page.on("request", lambda request: urls.append(request.url))

    def websocket(socket: Any) -> None:
        urls.append(socket.url)
        socket.on("framesent", lambda payload: frames_sent.append(str(payload)))

    page.on("websocket", websocket)
    page.urls = urls
    page.frames_sent = frames_sent
    page.goto(address)
    page.fill("#api-key", key)
    page.click("button[type=submit]")
    page.wait_for_selector("#stat-rps")
    page.errors = errors
    return page
