"""An app's recorder shipping to a collector's intake over real sockets."""

from __future__ import annotations

import logging
import socket
import threading
import time

import orjson
import pytest

from tests.collector.support import RunningIntake, short_directory
from tests.recording.support import make_recorder
from tests.support.waiting import wait_until
from watchkeeper.collector.connect import RemoteCollector
from watchkeeper.config import Address, load_settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.recording.codec import encode_events
from watchkeeper.recording.frames import PROTOCOL, READY, SEQUENCE, frame
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.shipping import ShippingWorker, read_frame
from watchkeeper.recording.worker import WAKE_EVERY_SECONDS
from watchkeeper.testing import MemorySink

SPANS = 1_000


def app_recorder(sink: MemorySink, collector: RemoteCollector, **settings: object) -> Recorder:
    options: dict[str, object] = {"raise_internal_errors": True, "spool_max_bytes": 0}
    options.update(settings)
    return Recorder(load_settings(**options), sink=sink, collector=collector)


def unix_address() -> Address:
    return Address("unix", path=short_directory() / "c.sock")


def record(recorder: Recorder, count: int, first: int = 0) -> None:
    for number in range(first, first + count):
        with recorder.span(f"GET /items/{number}", SpanKind.REQUEST) as span:
            span.user_id = f"user-{number % 7}"
            span.attributes = {"status_code": 200, "number": number}


def test_what_the_app_records_is_aggregated_and_written_by_the_collector() -> None:
    address = unix_address()
    collected = MemorySink()
    collector = RunningIntake(make_recorder(collected), [address]).start()
    own = MemorySink()
    app = app_recorder(own, RemoteCollector(address, "app", "worker-1")).start()
    try:
        record(app, SPANS)
        assert app.flush(60)
        wait_until(lambda: len(collected.spans()) == SPANS, 60, "the collector to write")
    finally:
        app.stop()
        collector.stop()
    assert own.spans() == []  # nothing written by the app itself
    names = sorted(span.name for span in collected.spans())
    assert names == sorted(f"GET /items/{number}" for number in range(SPANS))
    by_name = {span.name: span for span in collected.spans()}
    assert by_name["GET /items/12"].user_id == "user-5"
    assert by_name["GET /items/12"].attributes == {"status_code": 200, "number": 12}
    assert app.stats().shipped == SPANS
    # The collector aggregated them: its live windows saw every request.
    assert collector.recorder.stats().flushed == SPANS


def test_a_burst_from_several_workers_waits_for_room_instead_of_being_dropped() -> None:
    """Many senders at once fill a collector's buffer faster than it drains: the intake stops
    reading until there is room, and the events wait in the apps' senders, not lost."""
    address = unix_address()
    collected = MemorySink()
    # A buffer of 1,000 events against three senders of 4,000 each; a flush every second at most.
    collector_recorder = make_recorder(
        collected, buffer_size=1_000, batch_size=500, flush_interval=1.0
    )
    collector = RunningIntake(collector_recorder, [address]).start()
    apps = [
        app_recorder(MemorySink(), RemoteCollector(address, "app", f"worker-{n}")).start()
        for n in range(3)
    ]
    try:
        for number, app in enumerate(apps):
            record(app, 4_000, first=number * 4_000)
        for app in apps:
            assert app.flush(120)
        wait_until(lambda: len(collected.spans()) == 12_000, 120, "the collector to write")
    finally:
        for app in apps:
            app.stop()
        collector.stop()
    assert collector.recorder.stats().dropped_total == 0
    assert collector.intake.waits_for_room > 0
    assert sorted(span.attributes["number"] for span in collected.spans()) == list(  # type: ignore[index]
        range(12_000)
    )


class SlowSink(MemorySink):
    """A store that takes every batch, slowly: slower than three busy workers record."""

    def write(self, batch: Batch) -> None:
        time.sleep(0.05)
        super().write(batch)


def test_a_store_slower_than_the_apps_holds_the_apps_back_instead_of_losing_events() -> None:
    address = unix_address()
    collected = SlowSink()
    # Batches of 100 written at most 20 times a second; 1,000 events may wait in memory.
    collector_recorder = make_recorder(collected, buffer_size=1_000, batch_size=100)
    collector = RunningIntake(collector_recorder, [address]).start()
    apps = [
        app_recorder(MemorySink(), RemoteCollector(address, "app", f"worker-{n}")).start()
        for n in range(3)
    ]
    try:
        for number, app in enumerate(apps):
            record(app, 2_000, first=number * 2_000)
        for app in apps:
            assert app.flush(300)
    finally:
        for app in apps:
            app.stop()
        collector.stop()
    assert collector.recorder.stats().dropped_total == 0
    assert len(collected.spans()) == 6_000


def test_a_collector_that_goes_away_and_comes_back_loses_nothing_the_app_recorded() -> None:
    address = unix_address()
    first_sink, second_sink = MemorySink(), MemorySink()
    first = RunningIntake(make_recorder(first_sink), [address]).start()
    app = app_recorder(MemorySink(), RemoteCollector(address, "app", "worker-1")).start()
    try:
        record(app, 300)
        assert app.flush(60)
        first.stop()
        # Recorded while no collector answers: it waits in the app's buffer.
        record(app, 300, first=300)
        second = RunningIntake(make_recorder(second_sink), [address]).start()
        try:
            wait_until(
                lambda: len(first_sink.spans()) + len(second_sink.spans()) >= 600,
                60,
                "the second collector to receive what waited",
            )
            assert app.flush(60)
        finally:
            app.stop()
            second.stop()
    finally:
        app.stop()
    numbers = sorted(
        span.attributes["number"]  # type: ignore[index]
        for span in [*first_sink.spans(), *second_sink.spans()]
    )
    assert numbers == list(range(600))


def test_without_a_collector_the_app_writes_its_events_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = unix_address()  # nobody listens there
    fallen_back: list[bool] = []
    own = MemorySink()
    collector = RemoteCollector(
        address, "app", "worker-1", before_fallback=lambda: fallen_back.append(True)
    )
    app = app_recorder(own, collector, flush_interval=0.05).start()
    try:
        with caplog.at_level(logging.WARNING, logger="watchkeeper"):
            record(app, 50)
            wait_until(lambda: len(own.spans()) == 50, 120, "the app to write its events itself")
    finally:
        app.stop()
    assert fallen_back == [True]
    assert "cannot reach its collector" in caplog.text
    shipping = app.stats()
    assert shipping.shipped == 0
    assert shipping.dropped_total == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_collector_across_the_network_takes_only_senders_with_an_ingest_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = Address("tcp", host="127.0.0.1", port=_free_port())
    collected = MemorySink()
    intake = RunningIntake(make_recorder(collected), [address], keys=["ingest-key"]).start()
    try:
        with caplog.at_level(logging.WARNING, logger="watchkeeper"):
            assert RemoteCollector(address, "app", "a").connect() is None
            assert RemoteCollector(address, "app", "a", key="wrong").connect() is None
        assert "WATCHKEEPER_COLLECTOR_KEY" in caplog.text
        assert "ingest-key" not in caplog.text
        app = app_recorder(
            MemorySink(), RemoteCollector(address, "app", "a", key="ingest-key")
        ).start()
        try:
            record(app, 20)
            assert app.flush(60)
        finally:
            app.stop()
        wait_until(lambda: len(collected.spans()) == 20, 60, "the collector to write")
    finally:
        intake.stop()


def test_an_unreadable_frame_is_counted_and_the_connection_goes_on() -> None:
    address = unix_address()
    collected = MemorySink()
    intake = RunningIntake(make_recorder(collected, raise_internal_errors=False), [address])
    intake.start()
    spans = [Span(SpanKind.REQUEST, f"GET /{n}", 1.7e9, 0.01, 1, n + 1) for n in range(3)]
    try:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(30)
            connection.connect(str(address.path))
            hello = {"protocol": PROTOCOL, "service": "app", "instance": "a", "pid": 1}
            connection.sendall(frame(orjson.dumps(hello)))
            assert read_frame(connection) == READY
            connection.sendall(frame(SEQUENCE.pack(1) + b"o{not json"))
            read_frame(connection)  # acknowledged: the sender need not send it again
            document = encode_events(Batch("app", "a", spans=spans))
            connection.sendall(frame(SEQUENCE.pack(2) + document))
            read_frame(connection)
        wait_until(lambda: len(collected.spans()) == 3, 60, "the readable frame to be written")
    finally:
        intake.stop()
    assert intake.recorder.stats().dropped["invalid"] == 1


def test_a_sender_speaking_another_protocol_is_told_so() -> None:
    address = unix_address()
    intake = RunningIntake(make_recorder(MemorySink()), [address]).start()
    try:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(30)
            connection.connect(str(address.path))
            connection.sendall(frame(orjson.dumps({"protocol": 99})))
            assert b"upgrade the sender" in read_frame(connection)
    finally:
        intake.stop()


class HeldSink(MemorySink):
    """A store that takes nothing until it is let go: the collector acknowledges nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def write(self, batch: Batch) -> None:
        self.released.wait(120)
        super().write(batch)


def test_a_flush_waiting_for_acknowledgements_wakes_the_shipper_now_and_then_not_without_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cycles = 0
    cycle = ShippingWorker._cycle

    def counted(worker: ShippingWorker) -> None:
        nonlocal cycles
        cycles += 1
        cycle(worker)

    monkeypatch.setattr(ShippingWorker, "_cycle", counted)
    address = unix_address()
    held = HeldSink()
    collector = RunningIntake(make_recorder(held), [address]).start()
    app = app_recorder(MemorySink(), RemoteCollector(address, "app", "worker-1")).start()
    try:
        record(app, 100)
        before = cycles
        waited = 2.0
        assert app.flush(waited) is False
        # One cycle a wake period at most (and a few for the flush's own first wake); a caller
        # and a worker that woke each other would have cycled thousands of times.
        assert cycles - before <= waited / WAKE_EVERY_SECONDS + 5
        held.released.set()
        assert app.flush(60)
    finally:
        held.released.set()
        app.stop()
        collector.stop()
    assert len(held.spans()) == 100
