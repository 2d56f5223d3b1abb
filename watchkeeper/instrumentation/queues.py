"""Queues of background work: size, wait time, processed and failed counts.

:class:`MonitoredQueue` is an ``asyncio.Queue`` that times each item from ``put`` to ``get``
(a QUEUE span named after the queue, so its wait-time percentiles come from the rollups) and
samples its size as a gauge at most once a second. :func:`report_queue` records the same figures
by hand for queues Watchkeeper does not own (Celery, Redis lists, …).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Generic, TypeVar

from watchkeeper.instrumentation.metrics import check_metric_name
from watchkeeper.model.events import MetricKind, Span, SpanKind
from watchkeeper.model.ids import new_span_id, new_trace_id
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder

T = TypeVar("T")
SIZE_SAMPLE_INTERVAL = 1.0


class MonitoredQueue(asyncio.Queue[T], Generic[T]):
    def __init__(self, name: str, maxsize: int = 0, recorder: Recorder | None = None) -> None:
        super().__init__(maxsize)
        self.name = check_metric_name(name)
        self._recorder = recorder
        self._enqueued_at: dict[int, list[float]] = {}
        self._last_size_sample = 0.0

    @property
    def recorder(self) -> Recorder:
        return self._recorder or get_recorder()

    # asyncio.Queue routes every put and get through _put/_get, so timing them covers the
    # blocking and non-blocking variants alike without changing the items the caller sees.
    def _put(self, item: T) -> None:
        self._enqueued_at.setdefault(id(item), []).append(time.perf_counter())
        super()._put(item)
        self._sample_size()

    def _get(self) -> T:
        item: T = super()._get()
        times = self._enqueued_at.get(id(item))
        if times:
            waited = time.perf_counter() - times.pop(0)
            if not times:
                del self._enqueued_at[id(item)]
            self._record_wait(waited)
        self._sample_size()
        return item

    def task_failed(self, **labels: Any) -> None:
        """Mark one item as failed (and done)."""
        self.recorder.metric(
            f"queue.{self.name}.failed", 1, MetricKind.COUNTER, None, labels or None
        )
        self.task_done()

    def task_done(self) -> None:
        super().task_done()
        self.recorder.metric(f"queue.{self.name}.processed", 1, MetricKind.COUNTER)

    def _record_wait(self, waited: float) -> None:
        recorder = self.recorder
        if recorder.enabled:
            now = time.time()
            recorder.submit(
                Span(
                    SpanKind.QUEUE,
                    self.name,
                    now - waited,
                    waited,
                    new_trace_id(),
                    new_span_id(),
                    operation="wait",
                )
            )

    def _sample_size(self) -> None:
        now = time.monotonic()
        if now - self._last_size_sample >= SIZE_SAMPLE_INTERVAL:
            self._last_size_sample = now
            self.recorder.metric(f"queue.{self.name}.size", self.qsize(), MetricKind.GAUGE)


def report_queue(
    name: str,
    size: int | None = None,
    processed: int = 0,
    failed: int = 0,
    recorder: Recorder | None = None,
) -> None:
    """Record figures of a queue Watchkeeper does not own (counts are increments)."""
    check_metric_name(name)
    recorder = recorder or get_recorder()
    if size is not None:
        recorder.metric(f"queue.{name}.size", size, MetricKind.GAUGE)
    if processed:
        recorder.metric(f"queue.{name}.processed", processed, MetricKind.COUNTER)
    if failed:
        recorder.metric(f"queue.{name}.failed", failed, MetricKind.COUNTER)
