"""A sick PostgreSQL under steady load from a real server: nothing wedges, nothing goes missing.

Between Watchkeeper and PostgreSQL sits a TCP proxy the test makes refuse, black-hole, heal
only for new connections, or crawl (see tests/faults/harness.py for the load and the checks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.faults.harness import Load, accounted, fault_settings, run_under_load, stored_requests
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import Runtime

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


def _run_with_fault(
    postgres_url: str,
    postgres_schema: str,
    proxy: TcpProxy,
    fault: Callable[[Runtime, Load], None],
    **overrides: Any,
) -> tuple[Runtime, Load, int]:
    proxied = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    settings = fault_settings(
        database_url=proxied.render_as_string(hide_password=False),
        database_schema=postgres_schema,
        **overrides,
    )

    def heal(runtime: Runtime, load: Load) -> None:
        fault(runtime, load)
        proxy.restore()

    runtime, load = run_under_load(settings, heal)
    stored = stored_requests(
        load_settings(database_url=postgres_url, database_schema=postgres_schema)
    )
    return runtime, load, stored


def test_a_black_holed_store_is_abandoned_and_replaced(
    postgres_url: str, postgres_schema: str, proxy: TcpProxy
) -> None:
    def vanish_then_come_back_for_new_connections_only(runtime: Runtime, load: Load) -> None:
        proxy.black_hole()
        wait_until(lambda: runtime.stores.stuck_calls >= 1, timeout=60, what="a stuck call")
        sent = load.sent
        wait_until(lambda: load.sent >= sent + 200, timeout=60, what="serving while stuck")
        proxy.heal_new_only()
        wait_until(lambda: runtime.stores.is_open, timeout=120, what="a fresh store")

    runtime, load, stored = _run_with_fault(
        postgres_url, postgres_schema, proxy, vanish_then_come_back_for_new_connections_only
    )
    accounted("a black holed store is abandoned and replaced", runtime, load, stored)
    # Nothing was lost: what waited while the store was stuck was written once it was back.
    assert stored == load.sent


def test_a_refusing_store_loses_nothing(
    postgres_url: str, postgres_schema: str, proxy: TcpProxy
) -> None:
    def refuse_for_a_while(runtime: Runtime, load: Load) -> None:
        proxy.cut()
        failures = runtime.recorder.stats().store_failures
        wait_until(
            lambda: runtime.recorder.stats().store_failures >= failures + 3,
            what="writes failing",
        )
        sent = load.sent
        wait_until(lambda: load.sent >= sent + 200, timeout=60, what="serving while refused")

    runtime, load, stored = _run_with_fault(
        postgres_url, postgres_schema, proxy, refuse_for_a_while
    )
    accounted("a refusing store loses nothing", runtime, load, stored)
    assert stored == load.sent


def test_a_slow_store_keeps_up(postgres_url: str, postgres_schema: str, proxy: TcpProxy) -> None:
    def crawl(runtime: Runtime, load: Load) -> None:
        proxy.slow(0.05)
        sent = load.sent
        wait_until(lambda: load.sent >= sent + 300, timeout=60, what="serving while slow")

    runtime, load, stored = _run_with_fault(postgres_url, postgres_schema, proxy, crawl)
    accounted("a slow store keeps up", runtime, load, stored)
    assert stored == load.sent


OUTAGE_SECONDS = 60.0


def test_a_minute_long_outage_loses_nothing_with_the_spool(
    postgres_url: str, postgres_schema: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    spooled: list[int] = []

    def down_for_a_minute(runtime: Runtime, load: Load) -> None:
        proxy.cut()
        went_down = time.monotonic()
        wait_until(
            lambda: time.monotonic() - went_down >= OUTAGE_SECONDS,
            timeout=OUTAGE_SECONDS * 3,
            what="a minute of outage",
        )
        spooled.append(runtime.recorder.stats().spooled)

    # Memory holds a few hundred events: most of the minute must wait on disk.
    runtime, load, stored = _run_with_fault(
        postgres_url,
        postgres_schema,
        proxy,
        down_for_a_minute,
        buffer_size=500,
        batch_size=100,
        spool_dir=tmp_path / "spool",
    )
    accounted("a minute long outage loses nothing with the spool", runtime, load, stored)
    assert spooled[0] > 500, "the outage never reached the disk spool"
    assert stored == load.sent
