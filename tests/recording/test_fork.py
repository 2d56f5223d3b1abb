"""A process forked from one with a running recorder records through a worker of its own."""

from __future__ import annotations

import os
import sqlite3
import traceback
from collections import Counter
from pathlib import Path

from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore


def span_names(path: Path) -> Counter[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM wk_spans").fetchall()
    return Counter(name for (name,) in rows)


def test_a_forked_child_writes_its_own_spans_and_not_its_parents(tmp_path: Path) -> None:
    path = tmp_path / "forked.db"
    # Written only on flush or stop, so the parent still holds spans when it forks.
    settings = load_settings(sqlite_path=path, flush_interval=60, raise_internal_errors=True)
    recorder = Recorder(settings, sink=open_store(settings)).start()
    try:
        with recorder.span("parent-written"):
            pass
        assert recorder.flush(timeout=30)  # the store's connections are now pooled
        for _ in range(3):
            with recorder.span("parent-buffered"):
                pass

        child = os.fork()
        if child == 0:  # pragma: no cover - measured in the child, which never returns
            code = 1
            try:
                assert recorder.running
                store = recorder.sink
                assert isinstance(store, SqlStore)
                assert store.engine.pool.checkedin() == 0, "the parent's connections are its own"
                assert recorder.stats().buffer_depth == 0, "the parent writes what it held"
                for _ in range(10):
                    with recorder.span("child"):
                        pass
                written = recorder.flush(timeout=30)
                recorder.stop()
                code = 0 if written and recorder.stats().flushed == 10 else 2
            except BaseException:
                traceback.print_exc()  # the child's stderr shows in the test's report
            finally:
                os._exit(code)

        with recorder.span("parent-after-fork"):
            pass
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert recorder.flush(timeout=30)
    finally:
        recorder.stop()
    assert span_names(path) == {
        "parent-written": 1,
        "parent-buffered": 3,
        "child": 10,
        "parent-after-fork": 1,
    }
