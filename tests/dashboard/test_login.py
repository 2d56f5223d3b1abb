"""The dashboard's login in a real browser: a key once, then an HttpOnly session cookie; the live
feed on that cookie; pages shown by role; logging out ends the session in the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import select

from tests.access.conftest import ACME, BOOTSTRAP, GLOBEX, fill_two_organisations
from tests.dashboard.conftest import log_in
from tests.support.server import LiveServer
from tests.support.stores import batch_of, span
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.schema import dashboard_sessions
from watchkeeper.storage.sql_store import SqlStore


def make_key(url: str, **fields: object) -> str:
    answer = httpx.post(
        url + "/api/v1/keys",
        json=fields,
        headers={"Authorization": f"Bearer {BOOTSTRAP}"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, SqlStore]]:
    settings = load_settings(sqlite_path=tmp_path / "login.db", api_keys=[BOOTSTRAP])
    store = open_store(settings)
    fill_two_organisations(store, time.time())
    live = LiveServer(create_app(settings, store=store)).start()
    try:
        yield live.url, store
    finally:
        live.stop()
        store.close()


def test_log_in_navigate_live_feed_and_log_out(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, store = server
    token = make_key(url, name="acme admin", role="org_admin", org_id=ACME)
    page = log_in(browser, url + "/", token)
    assert page.is_visible("text=acme admin · org admin · acme")
    # The session cookie is out of scripts' reach.
    assert "watchkeeper_session" not in page.evaluate("document.cookie")
    page.wait_for_selector("#live.on", timeout=15_000)
    for name, marker in (
        ("sessions", "text=sess-a1"),
        ("routes", "text=POST /acme-only"),
        ("keys", "text=acme admin"),
        ("audit", "text=session.login"),
    ):
        page.goto(f"{url}/#/{name}")
        page.wait_for_selector(marker, timeout=15_000)
    assert not page.is_visible("text=POST /globex-only")
    page.goto(f"{url}/#/overview")
    now = time.time()
    store.write(
        batch_of(
            [
                span(now, 0.05, name="POST /globex-live", org_id=GLOBEX),
                span(now + 0.01, 0.05, name="POST /acme-live", org_id=ACME),
            ]
        )
    )
    page.wait_for_selector("#live-spans >> text=POST /acme-live", timeout=20_000)
    assert not page.is_visible("text=POST /globex-live")
    # No key in any URL the page asked for, nor in any frame it sent.
    assert page.urls
    assert not [seen for seen in page.urls if token in unquote(seen)]
    assert not [frame for frame in page.frames_sent if token in frame]

    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    with store.engine.connect() as connection:
        revoked = connection.execute(select(dashboard_sessions.c.revoked_at)).scalars().all()
    assert len(revoked) == 1
    assert revoked[0] is not None
    page.reload()
    page.wait_for_selector("#login:not([hidden])")
    assert not page.is_visible("#app")
    assert page.errors == []


def test_a_user_sees_no_keys_or_audit_pages(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, _ = server
    token = make_key(url, name="a user", role="user", org_id=ACME, user_id="ua-1")
    page = log_in(browser, url + "/", token)
    assert page.is_hidden("#nav a[href='#/keys']")
    assert page.is_hidden("#nav a[href='#/audit']")
    assert page.is_visible("#nav a[href='#/sessions']")
    page.goto(f"{url}/#/sessions")
    page.wait_for_selector("text=sess-a1", timeout=15_000)
    assert not page.is_visible("text=sess-a2")


def test_an_ingest_only_key_cannot_log_in(browser: Any, server: tuple[str, SqlStore]) -> None:
    url, _ = server
    token = make_key(url, name="shipper", role="ingest_only")
    page = browser.new_page()
    page.goto(url + "/")
    page.fill("#api-key", token)
    page.click("button[type=submit]")
    page.wait_for_selector("text=That key may not read this dashboard.")
    assert not page.is_visible("#app")
