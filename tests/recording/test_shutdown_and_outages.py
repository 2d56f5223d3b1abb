"""The recorder against real stores: the exit hook, a locked SQLite file, PostgreSQL cut off."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.tcp_proxy import TcpProxy
from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import RetainedTable
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from watchkeeper.config import load_settings
    from watchkeeper.recording.recorder import Recorder
    from watchkeeper.storage.factory import open_store

    path, count, ending = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    received = []
    if ending == "sigterm":
        # As servers such as uvicorn do: their own handler, which drains requests and then runs
        # the app's lifespan shutdown. It is installed before the app starts its recorder.
        def on_sigterm(signum, frame):
            received.append(signum)

        signal.signal(signal.SIGTERM, on_sigterm)
    settings = load_settings(sqlite_path=path, flush_interval=60)
    recorder = Recorder(settings, sink=open_store(settings)).start()
    for index in range(count):
        with recorder.span(f"job-{index % 5}"):
            pass
    assert recorder.stats().flushed == 0, "nothing may be written before shutdown"
    if ending == "sigterm":
        assert signal.getsignal(signal.SIGTERM) is on_sigterm, "SIGTERM is the server's"
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert received == [signal.SIGTERM]
        assert recorder.running, "the server's shutdown stops the recorder, not the signal"
    """
)


def count_spans(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM wk_spans").fetchone()
    return int(count)


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_the_exit_hook_flushes_everything_and_sigterm_is_left_to_the_server(
    tmp_path: Path, ending: str
) -> None:
    path = tmp_path / "shutdown.db"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "7000", ending],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert count_spans(path) == 7000


def test_locked_sqlite_file_loses_nothing_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    settings = load_settings(
        sqlite_path=path, flush_interval=0.05, buffer_size=50_000, raise_internal_errors=True
    )
    recorder = Recorder(settings, sink=StoreHandle(settings)).start()
    try:
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        for _ in range(3_000):
            with recorder.span("while-locked", SpanKind.INTERNAL):
                pass
        deadline = time.monotonic() + 15
        while recorder.stats().store_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = recorder.stats()
        assert stats.store_failures >= 1
        assert stats.last_flush_error is not None
        assert stats.flushed == 0
        locker.execute("ROLLBACK")
        locker.close()
        assert recorder.flush(timeout=20)
        stats = recorder.stats()
        assert stats.dropped_total == 0
        assert stats.flushed == 3_000
        assert stats.last_flush_error is None
    finally:
        recorder.stop()
    assert count_spans(path) == 3_000


@pytest.mark.postgres
def test_postgres_cut_off_loses_only_what_was_counted(
    postgres_url: str, postgres_schema: str
) -> None:
    real = make_url(postgres_url)
    with TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port)
        settings = load_settings(
            database_url=proxied.render_as_string(hide_password=False),
            database_schema=postgres_schema,
            flush_interval=0.05,
            buffer_size=2_000,
            batch_size=500,
            raise_internal_errors=True,
        )
        recorder = Recorder(settings, sink=StoreHandle(settings)).start()
        try:
            for _ in range(500):
                with recorder.span("before-cut"):
                    pass
            assert recorder.flush(timeout=20)
            proxy.cut()
            for _ in range(6_000):
                with recorder.span("during-cut"):
                    pass
            deadline = time.monotonic() + 20
            while recorder.stats().store_failures == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            during = recorder.stats()
            assert during.store_failures >= 1
            # The buffer, and the batches waiting for the store, hold up to 2,000 events each.
            assert during.buffer_depth <= 2_000
            assert during.pending <= 2_000
            proxy.restore()
            assert recorder.flush(timeout=30)
            after = recorder.stats()
        finally:
            recorder.stop()
    dropped = after.dropped_total
    assert dropped >= 6_000 - 2_000 - 2_000
    assert after.dropped["buffer_full"] + after.dropped["store_unavailable"] == dropped
    assert after.flushed + dropped == 6_500
    store = open_store(load_settings(database_url=postgres_url, database_schema=postgres_schema))
    try:
        assert store.count(RetainedTable.SPANS) == 6_500 - dropped
    finally:
        store.close()
