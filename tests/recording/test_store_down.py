"""While the store is down the worker keeps aggregating; only writing waits, bounded, in order."""

from __future__ import annotations

import pytest

from tests.recording.support import make_recorder
from tests.support.waiting import wait_until
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import SpanKind
from watchkeeper.testing import MemorySink


def down_sink() -> MemorySink:
    """A store that fails every write until its ``fail`` is set back to ``False``."""
    sink = MemorySink()
    sink.fail = True
    return sink


def written_indexes(sink: MemorySink) -> list[int]:
    return [(span.attributes or {})["index"] for span in sink.spans()]


def test_live_figures_and_observers_keep_up_while_the_store_is_down() -> None:
    sink = down_sink()
    observed: list[int] = []

    def observe(batch: Batch) -> None:
        observed.extend((span.attributes or {})["index"] for span in batch.spans)

    recorder = make_recorder(sink, buffer_size=1_000, batch_size=50)
    recorder.observers.append(observe)
    recorder.start()
    try:
        for index in range(300):
            call = recorder.span("payments-ai", SpanKind.INTEGRATION, "charge")
            call.set_attribute("index", index)
            with pytest.raises(ConnectionError), call:
                raise ConnectionError("upstream refused the connection")
        # Health and /metrics read these figures: they must not wait for the store.
        wait_until(lambda: len(observed) == 300 and recorder.stats().pending == 300)
        (live,) = recorder.live.window(60)
        assert (live.kind, live.name, live.count, live.errors) == (
            "integration",
            "payments-ai",
            300,
            300,
        )
        during = recorder.stats()
        assert sink.spans() == []
        assert during.store_failures >= 1
        assert (during.flushed, during.pending, during.buffer_depth) == (0, 300, 0)
        assert during.dropped_total == 0

        sink.fail = False
        assert recorder.flush(timeout=30)
        after = recorder.stats()
    finally:
        recorder.stop()
    # Written once each, in the order they were recorded; aggregated once each too.
    assert written_indexes(sink) == list(range(300))
    assert sorted(observed) == list(range(300))
    assert (after.flushed, after.pending, after.dropped_total) == (300, 0, 0)
    assert after.last_flush_error is None


def test_waiting_batches_are_bounded_and_the_oldest_are_dropped_and_counted() -> None:
    sink = down_sink()
    recorder = make_recorder(sink, buffer_size=100, batch_size=50).start()
    try:
        for start in range(0, 300, 50):
            for index in range(start, start + 50):
                with recorder.span("job") as span:
                    span.set_attribute("index", index)
            # Drained into batches even though none can be written: the buffer never fills.
            wait_until(lambda: recorder.stats().buffer_depth == 0)
            assert recorder.stats().pending <= 100
        sink.fail = False
        assert recorder.flush(timeout=30)
        after = recorder.stats()
    finally:
        recorder.stop()
    kept = written_indexes(sink)
    # What is kept is the newest, a whole number of batches, within the waiting queue's bound.
    assert 50 < len(kept) <= 100
    assert kept == list(range(300 - len(kept), 300))
    dropped = 300 - len(kept)
    assert after.dropped == {
        "buffer_full": 0,
        "shutdown": 0,
        "invalid": 0,
        "rejected": 0,
        "store_unavailable": dropped,
        "spool_full": 0,
        "spool_corrupt": 0,
        "spool_unwritable": 0,
        "export_queue_full": 0,
        "export_failed": 0,
        "export_shutdown": 0,
        "log_share_full": 0,
    }
    assert after.flushed == len(kept)
