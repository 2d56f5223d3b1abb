"""The disk spool: a store down for long, or across a restart, loses nothing; every loss is told."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.model.events import (
    LogRecord,
    MetricKind,
    MetricPoint,
    SessionMark,
    Severity,
    Snapshot,
    Span,
    SpanKind,
    SpanStatus,
    ValidationResult,
)
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.model.rollups import build_rollups
from watchkeeper.model.sessions import build_sessions
from watchkeeper.model.store import Store
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spool import SUFFIX, CorruptSpoolFile, decode, encode
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle

SECRET = "patient-7731-diagnosis"
"""Text in every recorded event, which no log line about losses may contain."""


class SwitchedStore:
    """A real store behind a switch: while ``down`` every write fails as an unreachable one's."""

    def __init__(self, store: Store, down: bool = True) -> None:
        self.store = store
        self.down = down

    def write(self, batch: Batch) -> None:
        if self.down:
            raise StoreUnavailable("the store is unreachable (switched off by the test)")
        self.store.write(batch)

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    options: dict[str, object] = {
        "sqlite_path": tmp_path / "store.db",
        "spool_dir": tmp_path / "spool",
        "flush_interval": 0.02,
        "buffer_size": 100,
        "batch_size": 25,
        "raise_internal_errors": True,
    }
    options.update(overrides)
    return load_settings(**options)


def record(recorder: Recorder, indexes: range) -> None:
    """Record spans in steady chunks, each drained before the next, as sustained traffic is."""
    for start in range(indexes.start, indexes.stop, 50):
        for index in range(start, min(start + 50, indexes.stop)):
            with recorder.span("answer", SpanKind.INTEGRATION, "chat") as span:
                span.set_attribute("index", index)
                span.set_attribute("prompt", SECRET)
        wait_until(lambda: recorder.stats().buffer_depth == 0, what="the buffer to drain")


def stored_indexes(path: Path) -> list[int]:
    """The ``index`` attribute of every stored span, in the order the store took them."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT attributes FROM wk_spans ORDER BY id").fetchall()
    return [json.loads(attributes)["index"] for (attributes,) in rows]


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def test_a_long_outage_under_steady_load_loses_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    sink = SwitchedStore(open_store(settings))
    recorder = Recorder(settings, sink=sink).start()
    try:
        # 6,000 events against a memory queue of 100: all but the newest wait on disk.
        record(recorder, range(6_000))
        during = recorder.stats()
        assert during.store_failures >= 1
        assert during.pending <= 100
        assert during.spooled >= 5_800
        assert during.dropped_total == 0
        sink.down = False
        assert recorder.flush(timeout=120)
        after = recorder.stats()
    finally:
        recorder.stop()
    assert stored_indexes(tmp_path / "store.db") == list(range(6_000))
    assert (after.flushed, after.dropped_total, after.spooled) == (6_000, 0, 0)
    assert spool_files(tmp_path / "spool") == []


def test_a_restart_during_an_outage_replays_everything_once_in_order(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    before = Recorder(settings, sink=SwitchedStore(open_store(settings))).start()
    record(before, range(1_000))
    before.stop()  # the store is still down: what waited in memory goes to disk too
    assert before.stats().dropped_total == 0
    assert sum(int(path.stem.split("-")[3]) for path in spool_files(tmp_path / "spool")) == 1_000

    # A new process: same settings, the store reachable again.
    after = Recorder(settings, sink=StoreHandle(settings)).start()
    try:
        record(after, range(1_000, 1_500))
        assert after.flush(timeout=60)
        stats = after.stats()
    finally:
        after.stop()
    assert stored_indexes(tmp_path / "store.db") == list(range(1_500))
    assert (stats.flushed, stats.dropped_total) == (1_500, 0)
    assert spool_files(tmp_path / "spool") == []


def test_recorders_sharing_a_spool_replay_each_file_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, batch_size=10)
    earlier = Recorder(settings, sink=SwitchedStore(open_store(settings))).start()
    record(earlier, range(2_000))
    earlier.stop()
    assert len(spool_files(tmp_path / "spool")) >= 150

    # Two worker processes of one app, each with its own connections to the one store.
    workers = [Recorder(settings, sink=StoreHandle(settings)) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            assert worker.flush(timeout=120)
        replayed = [worker.stats().flushed for worker in workers]
    finally:
        for worker in workers:
            worker.stop()
    assert sorted(stored_indexes(tmp_path / "store.db")) == list(range(2_000))
    assert sum(replayed) == 2_000
    assert spool_files(tmp_path / "spool") == []


def test_a_full_spool_drops_its_oldest_files_and_counts_them(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, spool_max_bytes=20_000)
    sink = SwitchedStore(open_store(settings))
    recorder = Recorder(settings, sink=sink).start()
    try:
        record(recorder, range(5_000))
        on_disk = sum(path.stat().st_size for path in spool_files(tmp_path / "spool"))
        sink.down = False
        assert recorder.flush(timeout=60)
        after = recorder.stats()
    finally:
        recorder.stop()
    # The cap holds (give or take the newest file), and what was kept is the newest.
    assert on_disk <= 20_000 + 4_000
    dropped = after.dropped["spool_full"]
    assert dropped > 0
    assert dropped == after.dropped_total
    kept = stored_indexes(tmp_path / "store.db")
    assert kept == list(range(5_000 - len(kept), 5_000))
    assert len(kept) + dropped == 5_000 == after.flushed + dropped


def test_a_corrupt_spool_file_is_skipped_and_counted(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    earlier = Recorder(settings, sink=SwitchedStore(open_store(settings))).start()
    record(earlier, range(500))
    earlier.stop()
    files = spool_files(tmp_path / "spool")
    truncated, garbled = files[3], files[7]
    truncated.write_bytes(truncated.read_bytes()[:40])
    garbled.write_bytes(b"WKS1o" + b"\x00" * 64)
    lost_events = sum(int(path.stem.split("-")[3]) for path in (truncated, garbled))

    later = Recorder(settings, sink=StoreHandle(settings)).start()
    try:
        assert later.flush(timeout=60)
        stats = later.stats()
    finally:
        later.stop()
    assert stats.dropped == {**dict.fromkeys(stats.dropped, 0), "spool_corrupt": lost_events}
    kept = stored_indexes(tmp_path / "store.db")
    assert len(kept) == 500 - lost_events
    assert kept == sorted(kept)
    assert spool_files(tmp_path / "spool") == []


def loss_lines(caplog: pytest.LogCaptureFixture, reason: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "watchkeeper" and f"reason: {reason};" in record.getMessage()
    ]


def test_losses_are_logged_at_a_bounded_rate_with_counts_and_never_contents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="watchkeeper")
    settings = settings_for(tmp_path, spool_max_bytes=0, loss_log_interval=3_600)
    recorder = Recorder(settings, sink=SwitchedStore(open_store(settings))).start()
    try:
        record(recorder, range(1_000))
        wait_until(lambda: loss_lines(caplog, "store_unavailable"), what="the first loss line")
        record(recorder, range(1_000, 2_000))
        # Hundreds more drops within the interval: still the one line.
        assert recorder.stats().dropped["store_unavailable"] >= 1_700
        (first,) = loss_lines(caplog, "store_unavailable")
    finally:
        recorder.stop(timeout=1)
    counted = recorder.stats().dropped["store_unavailable"]
    # Stopping tells what was not told yet: the rest of the drops and those at shutdown.
    first_count = int(first.split()[2])
    (rest,) = loss_lines(caplog, "store_unavailable")[1:]
    assert f"dropped {counted - first_count} events in the last " in rest
    assert f"{counted} since start" in rest
    (shutdown,) = loss_lines(caplog, "shutdown")
    assert f"dropped {recorder.stats().dropped['shutdown']} events" in shutdown
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert SECRET not in messages
    assert "answer" not in messages


def test_a_loss_is_logged_again_once_the_interval_has_passed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="watchkeeper")
    settings = settings_for(tmp_path, spool_max_bytes=0, loss_log_interval=0.5)
    recorder = Recorder(settings, sink=SwitchedStore(open_store(settings))).start()
    try:
        record(recorder, range(500))
        wait_until(lambda: loss_lines(caplog, "store_unavailable"), what="a loss line")
        record(recorder, range(500, 1_000))
        wait_until(lambda: len(loss_lines(caplog, "store_unavailable")) >= 2, what="a second")
    finally:
        recorder.stop(timeout=1)
    told = sum(int(line.split()[2]) for line in loss_lines(caplog, "store_unavailable"))
    assert told == recorder.stats().dropped["store_unavailable"]


class RejectingStore(SwitchedStore):
    """Up, but never able to store a span named 'poison' (as a database refuses a bad value)."""

    def write(self, batch: Batch) -> None:
        if any(span.name == "poison" for span in batch.spans):
            raise BatchRejected("could not write a batch: value out of range")
        super().write(batch)


def dropped_figures(settings: Settings) -> dict[str, float]:
    store = open_store(settings)
    try:
        points = store.metrics(
            TimeRange.last(timedelta(hours=1)), Scope.everything(), "watchkeeper.dropped"
        )
    finally:
        store.close()
    figures: dict[str, float] = {}
    for point in points:
        reason = point.attributes["reason"]
        figures[reason] = figures.get(reason, 0) + point.value
    return figures


def test_losses_are_stored_as_a_figure_that_outlives_the_process(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, raise_internal_errors=False)
    # The store is up but refuses one event: the loss is written at once.
    first = Recorder(settings, sink=RejectingStore(open_store(settings), down=False)).start()
    with first.span("poison"):
        pass
    with first.span("fine"):
        pass
    first.stop()
    # The store is down: 50 events find the buffer full, and their figure waits on disk.
    second = Recorder(settings, sink=SwitchedStore(open_store(settings)))
    for _ in range(150):
        with second.span("burst"):
            pass
    second.start().stop()
    assert second.stats().dropped["buffer_full"] == 50

    assert dropped_figures(settings) == {"rejected": 1}
    third = Recorder(settings, sink=StoreHandle(settings)).start()
    try:
        assert third.flush(timeout=60)
    finally:
        third.stop()
    assert dropped_figures(settings) == {"rejected": 1, "buffer_full": 50}
    with sqlite3.connect(tmp_path / "store.db") as connection:
        (spans,) = connection.execute("SELECT count(*) FROM wk_spans").fetchone()
    assert spans == 1 + 100


@pytest.mark.postgres
def test_postgres_cut_off_for_long_loses_nothing_with_the_spool(
    tmp_path: Path, postgres_url: str, postgres_schema: str
) -> None:
    real = make_url(postgres_url)
    with TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port)
        settings = settings_for(
            tmp_path,
            database_url=proxied.render_as_string(hide_password=False),
            database_schema=postgres_schema,
            buffer_size=500,
            batch_size=100,
        )
        recorder = Recorder(settings, sink=StoreHandle(settings)).start()
        try:
            record(recorder, range(200))
            assert recorder.flush(timeout=30)
            proxy.cut()
            record(recorder, range(200, 4_000))
            wait_until(lambda: recorder.stats().spooled > 0, what="batches on disk")
            proxy.restore()
            assert recorder.flush(timeout=120)
            after = recorder.stats()
        finally:
            recorder.stop()
    assert (after.flushed, after.dropped_total) == (4_000, 0)
    store = open_store(load_settings(database_url=postgres_url, database_schema=postgres_schema))
    try:
        assert store.count(RetainedTable.SPANS) == 4_000
    finally:
        store.close()


def test_a_spooled_batch_reads_back_whole_with_its_rollups_rebuilt() -> None:
    trace_id = (1_790_000_000 << 96) | (2**96 - 1)
    call = Span(
        SpanKind.INTEGRATION,
        "openai",
        1_790_000_000.25,
        0.5,
        trace_id,
        2**64 - 1,
        7,
        SpanStatus.ERROR,
        "chat",
        "TimeoutError",
        "no answer",
        "u-1",
        "acme",
        "s-1",
        "gpt-4o-mini",
        420,
        180,
        None,
        {"huge": 2**100, "nested": {"list": [1, 2.5, "x"]}},
    )
    marks = [SessionMark(1_790_000_005.0, "s-1", True, "u-1", "acme")]
    batch = Batch(
        service="guidance",
        instance="web-1",
        spans=[call],
        logs=[LogRecord(1_790_000_001.0, 40, "app", "failed", trace_id, 2**64 - 1)],
        metrics=[MetricPoint(1_790_000_002.0, "credits", MetricKind.GAUGE, float("nan"))],
        snapshots=[Snapshot(1_790_000_003.0, "question", {"q": "why?"}, trace_id)],
        validations=[
            ValidationResult(
                1_790_000_004.0, "min-score", "relevance", False, 0.4, ">= 0.65", Severity.ERROR
            )
        ],
        session_marks=marks,
        rollups=build_rollups([call]),
        sessions=build_sessions([call], marks),
    )
    back = decode(encode(batch))
    assert (back.service, back.instance, len(back)) == ("guidance", "web-1", 6)
    # Replayed under its own id: a store that took it before its outage skips it.
    assert back.batch_id == batch.batch_id
    (span,) = back.spans
    assert {name: getattr(span, name) for name in vars(call)} == vars(call)
    assert back.rollups == batch.rollups
    assert back.sessions == batch.sessions
    assert back.logs[0].trace_id == trace_id
    assert back.metrics[0].kind is MetricKind.GAUGE
    assert math.isnan(back.metrics[0].value)
    assert back.snapshots[0].data == {"q": "why?"}
    assert back.validations[0].severity is Severity.ERROR
    assert back.session_marks[0].ended is True
    with pytest.raises(CorruptSpoolFile):
        decode(encode(batch)[:-5])
