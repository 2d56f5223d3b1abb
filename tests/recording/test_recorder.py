import threading
import time
from collections.abc import Sequence

import pytest

from tests.recording.support import make_recorder
from tests.support.waiting import wait_until
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import BatchRejected
from watchkeeper.model.events import LogLevel, MetricKind, Span, SpanKind, SpanStatus
from watchkeeper.recording.containment import InternalError
from watchkeeper.testing import MemorySink


def test_stop_flushes_everything_buffered() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink, flush_interval=60, buffer_size=50_000).start()
    for index in range(20_000):
        with recorder.span(f"op-{index % 7}"):
            pass
    recorder.stop()
    assert len(sink.spans()) == 20_000
    stats = recorder.stats()
    assert stats.flushed == 20_000
    assert stats.dropped_total == 0
    assert sink.closed


def test_full_buffer_drops_and_counts_without_blocking() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink, buffer_size=100, batch_size=100)
    for _ in range(250):
        with recorder.span("burst"):
            pass
    stats = recorder.stats()
    assert stats.buffer_depth == 100
    assert stats.dropped == {
        "buffer_full": 150,
        "shutdown": 0,
        "invalid": 0,
        "rejected": 0,
        "store_unavailable": 0,
        "spool_full": 0,
        "spool_corrupt": 0,
        "spool_unwritable": 0,
        "export_queue_full": 0,
        "export_failed": 0,
        "export_shutdown": 0,
        "log_share_full": 0,
    }
    recorder.start()
    recorder.stop()
    assert len(sink.spans()) == 100
    assert recorder.stats().recorded == 100


def test_outage_keeps_bound_counts_drops_and_recovers() -> None:
    sink = MemorySink()
    sink.fail = True
    recorder = make_recorder(sink, buffer_size=1_000, batch_size=200).start()
    try:
        for _ in range(3_000):
            with recorder.span("during-outage"):
                pass
        wait_until(lambda: recorder.stats().buffer_depth == 0 and recorder.stats().store_failures)
        stats = recorder.stats()
        # The buffer and the batches waiting for the store hold up to the buffer's size each.
        assert stats.pending <= 1_000
        assert stats.store_failures >= 1
        assert stats.last_flush_error is not None
        assert "failing on purpose" in stats.last_flush_error
        dropped = stats.dropped_total
        assert dropped > 0
        sink.fail = False
        assert recorder.flush(timeout=30)
        stats = recorder.stats()
        assert stats.last_flush_error is None
        assert stats.pending == 0
        assert stats.dropped_total == dropped
        assert len(sink.spans()) + dropped == 3_000
        assert stats.flushed == len(sink.spans())
    finally:
        recorder.stop()


def test_children_inherit_trace_parent_and_identity() -> None:
    sink = MemorySink()
    with make_recorder(sink) as recorder:
        with recorder.span("POST /chat", SpanKind.REQUEST) as request:
            request.set_identity(user_id="u1", org_id="acme", session_id="s9")
            with recorder.span("openai", SpanKind.INTEGRATION, operation="chat") as call:
                call.usage(model="gpt-4o-mini", input_tokens=12, output_tokens=30, cost=0.0002)
                recorder.log(LogLevel.INFO, "asked the model")
            recorder.metric("credits_used", 3)
        with recorder.span("next request", SpanKind.REQUEST):
            pass
    request_span, next_span = sink.spans(kind=SpanKind.REQUEST)
    (call_span,) = sink.spans(kind=SpanKind.INTEGRATION)
    assert call_span.trace_id == request_span.trace_id
    assert call_span.parent_id == request_span.span_id
    assert (call_span.user_id, call_span.org_id, call_span.session_id) == ("u1", "acme", "s9")
    assert call_span.model == "gpt-4o-mini"
    assert call_span.input_tokens == 12
    assert next_span.trace_id != request_span.trace_id
    assert next_span.parent_id == 0
    assert next_span.user_id is None
    (log,) = sink.logs
    assert (log.trace_id, log.span_id, log.user_id) == (call_span.trace_id, call_span.span_id, "u1")
    (metric,) = sink.metrics
    assert (metric.name, metric.kind, metric.value, metric.org_id) == (
        "credits_used",
        MetricKind.COUNTER,
        3,
        "acme",
    )


def test_a_new_trace_id_starts_with_its_second_then_96_random_bits() -> None:
    sink = MemorySink()
    with make_recorder(sink) as recorder:
        for _ in range(50):
            with recorder.span("root"):
                pass
    spans = sink.spans()
    # The store's trace-id index grows at its end because ids lead with the time they were made.
    assert all(span.trace_id >> 96 == int(span.start) for span in spans)
    assert all(span.span_id for span in spans)
    assert len({span.trace_id & (1 << 96) - 1 for span in spans}) == 50
    assert len({span.span_id for span in spans}) == 50


def test_exception_marks_span_failed_and_propagates_unchanged() -> None:
    sink = MemorySink()
    error = KeyError("missing chart")
    with make_recorder(sink) as recorder:
        with pytest.raises(KeyError) as raised, recorder.span("chart"):
            raise error
        assert raised.value is error
    (span,) = sink.spans()
    assert span.status is SpanStatus.ERROR
    assert span.error_type == "KeyError"
    assert span.error_message == "'missing chart'"


def test_duration_and_start_are_measured() -> None:
    sink = MemorySink()
    before = time.time()
    with make_recorder(sink) as recorder, recorder.span("sleep"):
        time.sleep(0.05)
    (span,) = sink.spans()
    assert 0.045 <= span.duration < 1.0
    assert before <= span.start <= before + 0.5


def test_recording_from_many_threads_loses_nothing() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink, buffer_size=100_000).start()

    def work() -> None:
        for _ in range(5_000):
            with recorder.span("threaded"):
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.stop()
    assert len(sink.spans()) == 20_000
    assert len({span.span_id for span in sink.spans()}) == 20_000


def test_live_windows_are_fed_by_the_worker() -> None:
    sink = MemorySink()
    with make_recorder(sink) as recorder:
        for index in range(30):
            with recorder.span("/health", SpanKind.REQUEST) as span:
                if index % 3 == 0:
                    span.set_status(SpanStatus.ERROR)
        recorder.flush()
        (stats,) = recorder.live.window(60)
    assert (stats.kind, stats.name, stats.count, stats.errors) == ("request", "/health", 30, 10)


def test_disabled_recorder_accepts_calls_and_records_nothing() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink, enabled=False).start()
    with recorder.span("ignored") as span:
        span.set_attribute("k", "v")
        span.usage(model="m", input_tokens=1)
    recorder.log(LogLevel.ERROR, "ignored")
    recorder.metric("ignored", 1)
    recorder.stop()
    assert not recorder.running
    assert recorder.stats().recorded == 0
    assert sink.batches == 0


class ChokingSink(MemorySink):
    """A sink outside the store contract: it fails on one value with a plain exception."""

    def write(self, batch: Batch) -> None:
        if any(span.name == "poison" for span in batch.spans):
            raise RuntimeError("the sink cannot take this value")
        super().write(batch)


class FlakySink(MemorySink):
    """A sink whose network is down for a while: OSError, however often, is an outage."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, batch: Batch) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection refused")
        super().write(batch)


def test_a_batch_a_sink_keeps_failing_on_is_isolated_not_retried_forever() -> None:
    sink = ChokingSink()
    recorder = make_recorder(sink, buffer_size=1_000, batch_size=100, raise_internal_errors=False)
    recorder.start()
    try:
        for name in ("good-1", "poison", "good-2"):
            with recorder.span(name):
                pass
        wait_until(lambda: recorder.stats().dropped.get("rejected") == 1, what="the isolation")
        with recorder.span("after"):
            pass
        assert recorder.flush(timeout=30)
    finally:
        recorder.stop()
    stats = recorder.stats()
    assert stats.store_failures >= 2  # retried like an outage before the batch was blamed
    assert sorted(span.name for span in sink.spans()) == ["after", "good-1", "good-2"]


def test_network_errors_are_outages_retried_until_they_pass() -> None:
    sink = FlakySink(failures=8)
    recorder = make_recorder(sink, buffer_size=1_000, batch_size=100).start()
    try:
        with recorder.span("kept"):
            pass
        assert recorder.flush(timeout=60)
    finally:
        recorder.stop()
    assert recorder.stats().store_failures == 8
    assert recorder.stats().dropped_total == 0
    assert [span.name for span in sink.spans()] == ["kept"]


def test_a_malformed_span_is_dropped_alone_and_reported_under_strict_mode() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    with recorder.span("good-before"):
        pass
    with recorder.span("bad") as bad:
        pass
    bad.duration = "slow"  # type: ignore[assignment]
    with recorder.span("good-after"):
        pass
    with pytest.raises(InternalError, match="aggregating spans"):
        recorder.flush()
    recorder.stop()
    assert [span.name for span in sink.spans()] == ["good-before", "good-after"]
    assert recorder.stats().dropped["invalid"] == 1


def test_enrichers_fill_fields_on_the_worker_thread() -> None:
    sink = MemorySink()
    threads: list[str] = []

    def price(spans: Sequence[Span]) -> None:
        threads.append(threading.current_thread().name)
        for span in spans:
            span.cost = 0.5

    recorder = make_recorder(sink)
    recorder.enrichers.append(price)
    with recorder, recorder.span("llm") as span:
        span.usage(model="m", input_tokens=3)
    (stored,) = sink.spans()
    assert stored.cost == 0.5
    assert threads == ["watchkeeper-flush"]


def test_observers_see_each_batch_and_their_errors_are_contained() -> None:
    sink = MemorySink()
    seen: list[int] = []

    def count(batch: Batch) -> None:
        seen.append(len(batch.spans))

    def broken(batch: Batch) -> None:
        raise RuntimeError("observer bug")

    recorder = make_recorder(sink, raise_internal_errors=False)
    recorder.observers.extend([broken, count])
    with recorder:
        for _ in range(5):
            with recorder.span("x"):
                pass
    assert sum(seen) == 5
    assert len(sink.spans()) == 5
    assert recorder.stats().internal_errors >= 1


class PickySink(MemorySink):
    """Rejects any batch holding a span named 'poison', as a database rejects a bad value."""

    def write(self, batch: Batch) -> None:
        if any(span.name == "poison" for span in batch.spans):
            raise BatchRejected("could not write a batch: value out of range")
        super().write(batch)


def test_a_rejected_batch_loses_only_the_bad_event() -> None:
    sink = PickySink()
    recorder = make_recorder(sink, flush_interval=60, raise_internal_errors=False).start()
    for index in range(1_000):
        with recorder.span("poison" if index == 637 else "fine"):
            pass
        recorder.log(LogLevel.INFO, f"line {index}")
    recorder.stop()
    assert len(sink.spans()) == 999
    assert len(sink.logs) == 1_000
    stats = recorder.stats()
    assert stats.dropped["rejected"] == 1
    assert stats.flushed == 1_999
    # The loss is written as Watchkeeper's own figure, in a batch of its own after the rest.
    (figure,) = [point for point in sink.metrics if point.name == "watchkeeper.dropped"]
    assert (figure.value, figure.attributes) == (1, {"reason": "rejected"})
