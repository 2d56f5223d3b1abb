import asyncio

import pytest

from watchkeeper.instrumentation.metrics import counter, gauge
from watchkeeper.instrumentation.queues import MonitoredQueue, report_queue
from watchkeeper.model.events import MetricKind, SpanKind
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


def test_metric_input_is_checked(watchkeeper_recorder: RecorderUnderTest) -> None:
    with pytest.raises(TypeError, match="metric name"):
        counter("credits used!")
    with pytest.raises(TypeError, match="needs a number, got 'three'"):
        counter("credits", watchkeeper_recorder).add("three")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only goes up"):
        counter("credits", watchkeeper_recorder).add(-1)


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
