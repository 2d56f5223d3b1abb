"""The recorder against real stores: shutdown hooks, a locked SQLite file, PostgreSQL cut off."""

from __future__ import annotations

import signal
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
from watchkeeper.recording.model import SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.base import RetainedTable
from watchkeeper.storage.factory import open_store

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from watchkeeper.config import load_settings
    from watchkeeper.recording.recorder import Recorder

    path, count, ending = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    recorder = Recorder(load_settings(sqlite_path=path, flush_interval=60)).start()
    for index in range(count):
        with recorder.span(f"job-{index % 5}"):
            pass
    assert recorder.stats().flushed == 0, "nothing may be written before shutdown"
    if ending == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
    """
)


@pytest.fixture
def postgres_schema_url(postgres_url: str, postgres_schema: str) -> str:
    """A DATABASE_URL whose connections use the test's own schema."""
    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}options=-csearch_path%3D{postgres_schema}"


def count_spans(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM wk_spans").fetchone()
    return int(count)


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_shutdown_hooks_flush_everything(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "shutdown.db"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "7000", ending],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    expected_code = -signal.SIGTERM if ending == "sigterm" else 0
    assert child.returncode == expected_code, child.stderr
    assert count_spans(path) == 7000


def test_locked_sqlite_file_loses_nothing_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    settings = load_settings(
        sqlite_path=path, flush_interval=0.05, buffer_size=50_000, raise_internal_errors=True
    )
    recorder = Recorder(settings).start()
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
def test_postgres_cut_off_loses_only_what_was_counted(postgres_schema_url: str) -> None:
    real = make_url(postgres_schema_url)
    with TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port)
        settings = load_settings(
            database_url=proxied.render_as_string(hide_password=False),
            flush_interval=0.05,
            buffer_size=2_000,
            batch_size=500,
            raise_internal_errors=True,
        )
        recorder = Recorder(settings).start()
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
            assert during.buffer_depth + during.pending <= 2_000 + 500
            dropped = during.dropped["buffer_full"]
            assert dropped >= 6_000 - 2_000 - 500
            proxy.restore()
            assert recorder.flush(timeout=30)
            after = recorder.stats()
        finally:
            recorder.stop()
    assert after.dropped["buffer_full"] == dropped
    assert after.flushed + dropped == 6_500
    store = open_store(load_settings(database_url=postgres_schema_url))
    try:
        assert store.count(RetainedTable.SPANS) == 6_500 - dropped
    finally:
        store.close()
