import asyncio

import pytest

from watchkeeper.config import load_settings
from watchkeeper.instrumentation.metrics import counter, gauge
from watchkeeper.instrumentation.queues import MonitoredQueue, report_queue
from watchkeeper.model.events import MetricKind, SpanKind
from watchkeeper.recording.containment import InternalError
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink
from watchkeeper.testing.plugin import RecorderUnderTest


def test_business_counters_and_gauges(watchkeeper_recorder: RecorderUnderTest) -> None:
    credits = counter("credits_used", watchkeeper_recorder)
    credits.add(3, org_id="acme", plan="pro")
    credits.add()
    gauge("active_sessions", watchkeeper_recorder).set(12)
    watchkeeper_recorder.flush()
    points = [
        (point.name, point.kind, point.value, point.org_id, point.attributes)
        for point in watchkeeper_recorder.memory.metrics
    ]
    assert points == [
        ("credits_used", MetricKind.COUNTER, 3.0, "acme", {"plan": "pro"}),
        ("credits_used", MetricKind.COUNTER, 1.0, None, None),
        ("active_sessions", MetricKind.GAUGE, 12.0, None, None),
    ]


def test_metric_misuse_raises_a_clear_message_in_strict_mode() -> None:
    # Not started: a started strict recorder would raise the first error again at its stop.
    recorder = Recorder(load_settings(raise_internal_errors=True), sink=MemorySink())
    with pytest.raises(InternalError, match="metric name"):
        counter("credits used!", recorder)
    with pytest.raises(InternalError, match="needs a number, got 'three'"):
        counter("credits", recorder).add("three")  # type: ignore[arg-type]
    with pytest.raises(InternalError, match="only goes up"):
        counter("credits", recorder).add(-1)
    with pytest.raises(InternalError, match="needs a finite number"):
        gauge("load", recorder).set(float("nan"))


def test_metric_misuse_never_raises_into_the_app_and_is_counted() -> None:
    sink = MemorySink()
    recorder = Recorder(load_settings(raise_internal_errors=False), sink=sink).start()
    try:
        broken = counter(123, recorder)  # type: ignore[arg-type]
        broken.add(1)
        counter("credits", recorder).add("x")  # type: ignore[arg-type]
        counter("credits", recorder).add(-1)
        gauge("", recorder).set(1)
        gauge("load", recorder).set(None)  # type: ignore[arg-type]
        counter("credits", recorder).add(2)
        recorder.flush()
        assert recorder.stats().internal_errors == 5
        assert [(point.name, point.value) for point in sink.metrics] == [("credits", 2.0)]
    finally:
        recorder.stop()


def test_monitored_queue_times_waits_and_counts(watchkeeper_recorder: RecorderUnderTest) -> None:
    async def scenario() -> None:
        queue: MonitoredQueue[str] = MonitoredQueue("tts_jobs", recorder=watchkeeper_recorder)
        await queue.put("a")
        queue.put_nowait("b")
        await asyncio.sleep(0.05)
        assert await queue.get() == "a"
        queue.task_done()
        assert queue.get_nowait() == "b"
        queue.task_failed(reason="voice service down")
        await queue.join()

    asyncio.run(scenario())
    waits = watchkeeper_recorder.recorded_spans(kind=SpanKind.QUEUE)
    assert [span.name for span in waits] == ["tts_jobs", "tts_jobs"]
    assert all(span.duration >= 0.045 for span in waits)
    names = [point.name for point in watchkeeper_recorder.memory.metrics]
    assert names.count("queue.tts_jobs.processed") == 2
    assert names.count("queue.tts_jobs.failed") == 1
    assert "queue.tts_jobs.size" in names


def test_report_queue_by_hand(watchkeeper_recorder: RecorderUnderTest) -> None:
    report_queue("celery", size=7, processed=40, failed=2, recorder=watchkeeper_recorder)
    watchkeeper_recorder.flush()
    assert {(p.name, p.value) for p in watchkeeper_recorder.memory.metrics} == {
        ("queue.celery.size", 7.0),
        ("queue.celery.processed", 40.0),
        ("queue.celery.failed", 2.0),
    }
