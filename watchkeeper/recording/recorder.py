"""The recorder: accepts events on any thread without blocking, and owns the flush worker.

The hot path is :meth:`Recorder.submit`: a length check and a ``deque.append`` (atomic under the
GIL). Everything else — aggregation, rollups, formatting, I/O — happens on the worker thread.

Shutdown is the server's to start: on SIGTERM servers such as uvicorn drain their requests and
then run the app's lifespan shutdown, which stops the recorder; an ``atexit`` hook flushes
whatever is left when the interpreter exits. A forked child gets its own buffer, worker thread
and store connections (see :meth:`Recorder._after_fork_in_child`).
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

import psutil

from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import (
    PROTECTED_LEVELS,
    Attributes,
    Event,
    LogRecord,
    MetricKind,
    MetricPoint,
    Span,
    SpanKind,
)
from watchkeeper.model.store import Sink
from watchkeeper.recording.containment import Containment
from watchkeeper.recording.shipping import Collector, ShippingWorker
from watchkeeper.recording.spans import ActiveSpan, current_span, log_here
from watchkeeper.recording.spool import Spool
from watchkeeper.recording.stats import DropReason, LossLog, RecorderCounters, StatsSnapshot
from watchkeeper.recording.windows import LiveWindows
from watchkeeper.recording.worker import (
    BatchObserver,
    Buffered,
    FlushWorker,
    Receipt,
    SpanEnricher,
)
from watchkeeper.redaction import Redactor


@runtime_checkable
class ForkAwareSink(Protocol):
    """A sink holding resources a forked child must not share with its parent (connections)."""

    def after_fork_in_child(self) -> None: ...


SHIP_BATCH_SIZE = 256
SHIP_INTERVAL_SECONDS = 0.25
"""Small, frequent frames: each costs the app little to encode, and the collector's view stays
as fresh as an in-process one."""


class Recorder:
    """Buffers spans, logs and metric points and has them written in batches.

    ``sink`` defaults to the store named by the settings (SQLite file or PostgreSQL), opened and
    migrated by :meth:`start`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        sink: Sink | None = None,
        enrichers: Sequence[SpanEnricher] = (),
        observers: Sequence[BatchObserver] = (),
        collector: Collector | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.enrichers = list(enrichers)
        self.observers = list(observers)
        self.redactor = (
            Redactor.build(self.settings.redact_fields, self.settings.redact_patterns)
            if self.settings.redact
            else None
        )
        self.enabled = self.settings.enabled
        # Chosen once: fixed with the settings, and one less test on every span.
        self._span_submit: Callable[[Span], None] = self.submit if self.enabled else _discard
        self._sink = sink
        # With a collector, events are shipped to it; the sink is written only when no
        # collector can be had.
        self._collector = collector
        self._capacity = self.settings.buffer_size
        # Log records are taken only while the buffer is below their share, so a log storm
        # leaves the rest of it to spans.
        self._log_capacity = max(1, int(self._capacity * self.settings.log_buffer_share))
        self._wake_at = self.settings.batch_size
        self._buffer: deque[Buffered] = deque()
        self._counters = RecorderCounters()
        self._spool = self._open_spool()
        self._containment = Containment(strict=self.settings.raise_internal_errors)
        self.live = LiveWindows(self.settings.max_live_keys)
        self._worker: FlushWorker | ShippingWorker | None = None
        self._lock = threading.Lock()
        self._process = psutil.Process()
        # Weakly: the interpreter keeps fork hooks for good, and must not keep recorders so.
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def sink(self) -> Sink | None:
        return self._sink

    def start(self) -> Recorder:
        """Open the store, start the flush worker and register the exit hook that flushes."""
        with self._lock:
            if self._worker is not None or not self.enabled:
                return self
            if self._sink is None:
                raise RuntimeError(
                    "this Recorder has nowhere to write: give it a sink (Recorder(settings, "
                    "sink=...)), or let watchkeeper.instrument(app) or watchkeeper.configure() "
                    "build it with the store the settings name"
                )
            self._worker = self._start_workers(self._sink)
            atexit.register(self.stop)
        return self

    def _open_spool(self) -> Spool | None:
        """The disk spool the settings name (touched only once something must be spooled)."""
        directory = self.settings.spool_directory
        if directory is None:
            return None
        counters = self._counters
        return Spool(
            directory,
            self.settings.spool_max_bytes,
            lambda reason, events: counters.drop(DropReason(reason), events),
        )

    def _start_workers(self, sink: Sink) -> FlushWorker | ShippingWorker:
        collector = self._collector
        if collector is None:
            return self._start_worker(sink)
        shipper = ShippingWorker(
            buffer=self._buffer,
            counters=self._counters,
            containment=self._containment,
            collector=collector,
            fallback=lambda: self._start_worker(sink),
            service=self.settings.service,
            instance=self.settings.instance,
            batch_size=min(self.settings.batch_size, SHIP_BATCH_SIZE),
            interval=min(self.settings.flush_interval, SHIP_INTERVAL_SECONDS),
        )
        shipper.start()
        return shipper

    @property
    def shipping(self) -> ShippingWorker | None:
        """The worker shipping to a collector, if this recorder has one."""
        worker = self._worker
        return worker if isinstance(worker, ShippingWorker) else None

    def _start_worker(self, sink: Sink) -> FlushWorker:
        worker = FlushWorker(
            buffer=self._buffer,
            sink=sink,
            counters=self._counters,
            live=self.live,
            containment=self._containment,
            service=self.settings.service,
            instance=self.settings.instance,
            batch_size=self.settings.batch_size,
            flush_interval=self.settings.flush_interval,
            # As many events may wait for the store as the buffer holds.
            waiting_capacity=self._capacity,
            losses=LossLog(self._counters, self.settings.loss_log_interval),
            spool=self._spool,
            enrichers=self.enrichers,
            redactor=self.redactor,
            observers=self.observers,
        )
        worker.start()
        return worker

    def stop(self, timeout: float | None = None) -> None:
        """Flush everything buffered, stop the worker and close the store. Safe to call twice."""
        with self._lock:
            worker, self._worker = self._worker, None
            if worker is None:
                return
            atexit.unregister(self.stop)
        worker.stop(self.settings.shutdown_timeout if timeout is None else timeout)
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception as error:
                self._containment.report("closing the store", error)
        self._containment.raise_pending()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written; ``False`` if the time ran out."""
        worker = self._worker
        if worker is None:
            return not self._buffer
        done = worker.wait_idle(timeout)
        self._containment.raise_pending()
        return done

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _after_fork_in_child(self) -> None:
        """Give a forked child a recorder of its own; only the child's thread exists here.

        Locks may have been held by the parent's threads at the fork, and the parent's worker
        thread did not come along: everything they guard is made anew. The buffer starts empty
        (the parent writes what it held) and so do the counters, windows and internal-error
        count, which describe this process from now on.
        """
        self._lock = threading.Lock()
        self._buffer = deque()
        self._counters = RecorderCounters()
        # Its losses are counted on the child's counters; its files are shared, by locks.
        self._spool = self._open_spool()
        self._containment = Containment(strict=self.settings.raise_internal_errors)
        self.live = LiveWindows(self.settings.max_live_keys)
        self._process = psutil.Process()
        sink = self._sink
        if isinstance(sink, ForkAwareSink):
            sink.after_fork_in_child()
        if self._worker is not None and sink is not None:
            self._worker = self._start_workers(sink)

    # -- the hot path ------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Enqueue an event; never blocks, never raises. A full buffer drops and counts it."""
        buffer = self._buffer
        depth = len(buffer)
        if depth >= self._capacity:
            self._counters.drop(DropReason.BUFFER_FULL)
            return
        buffer.append(event)
        if depth == self._wake_at:
            worker = self._worker
            if worker is not None:
                worker.wake()

    def submit_log(self, record: LogRecord) -> None:
        """Enqueue a log record within the logs' share of the buffer (never blocks, never raises);
        AUDIT and SECURITY records take the spans' share, as any span does."""
        if len(self._buffer) >= self._log_capacity and record.level not in PROTECTED_LEVELS:
            self._counters.drop(DropReason.LOG_SHARE_FULL)
            return
        self.submit(record)

    @property
    def takes_logs(self) -> bool:
        """Whether a log record submitted now would be kept: for readers of files, which can
        wait rather than drop."""
        return len(self._buffer) < self._log_capacity

    def has_room_for(self, count: int) -> bool:
        """Whether ``count`` more events would be taken without a drop (or the buffer is empty:
        a larger lot is then taken as far as it fits). What a collector's intake waits for:
        the flush worker drains the buffer as fast as the store writes, so a slow store holds
        the intake back too, and a store that is down does not (its batches wait, or spill)."""
        depth = len(self._buffer)
        return not depth or depth + count <= self._capacity

    def submit_receipt(self, settle: Callable[[], object]) -> None:
        """Have ``settle`` called (on the worker's thread) once every event submitted so far is
        written, spooled or counted as lost: how a collector acknowledges what it holds."""
        if not self.enabled:
            settle()
            return
        self._buffer.append(Receipt(settle))

    def span(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        operation: str | None = None,
        trace_id: int = 0,
        parent_id: int = 0,
    ) -> ActiveSpan:
        """Open a span, a child of the current one if any (else of ``trace_id``/``parent_id``)."""
        return ActiveSpan(
            self._span_submit,
            kind,
            name,
            operation,
            current_span.get(),
            trace_id,
            parent_id,
        )

    def log(
        self,
        level: int,
        message: str,
        logger: str = "app",
        attributes: Attributes | None = None,
    ) -> None:
        if not self.enabled:
            return
        record = log_here(time.time(), level, logger, message, attributes)
        self.submit_log(record)

    def metric(
        self,
        name: str,
        value: float,
        kind: MetricKind = MetricKind.COUNTER,
        org_id: str | None = None,
        attributes: Attributes | None = None,
    ) -> None:
        if not self.enabled:
            return
        if org_id is None:
            active = current_span.get()
            org_id = active.org_id if active is not None else None
        self.submit(MetricPoint(time.time(), name, kind, value, org_id, attributes))

    # -- self-monitoring ---------------------------------------------------------------------

    def report_internal_error(
        self, where: str, error: BaseException, *, background: bool = False
    ) -> None:
        """For integrations: contain an error raised inside Watchkeeper on the caller's thread
        (or on a ``background`` thread of Watchkeeper's own, where strict mode raises it from
        the next ``flush``/``stop`` instead)."""
        self._containment.report(where, error, on_caller_thread=not background)

    def drop(self, reason: DropReason, count: int) -> None:
        """Count events lost after the recorder handed them on (an exporter's): they are logged,
        stored and shown with the recorder's own losses."""
        self._counters.drop(reason, count)

    def stats(self) -> StatsSnapshot:
        counters = self._counters
        worker = self._worker
        depth = len(self._buffer)
        pending = worker.pending if worker is not None else 0
        spooled = self._spool.events if self._spool is not None else 0
        return StatsSnapshot(
            recorded=counters.drained + depth,
            flushed=counters.flushed,
            dropped=counters.dropped_snapshot(),
            buffer_depth=depth,
            buffer_capacity=self._capacity,
            pending=pending,
            spooled=spooled,
            batches_written=counters.batches_written,
            store_failures=counters.store_failures,
            flush_lag_seconds=counters.flush_lag_seconds,
            last_flush_at=counters.last_flush_at,
            last_flush_seconds=counters.last_flush_seconds,
            last_flush_error=counters.last_flush_error,
            live_keys=len(self.live),
            live_evictions=self.live.evictions,
            internal_errors=self._containment.count,
            rss_bytes=int(self._process.memory_info().rss),
            shipped=counters.shipped,
        )


def _discard(span: Span) -> None:
    """Where spans go when monitoring is turned off."""


def _after_fork(recorder: weakref.ref[Recorder]) -> None:
    alive = recorder()
    if alive is None:
        return
    try:
        alive._after_fork_in_child()
    except Exception as error:
        alive.report_internal_error("preparing a forked process", error)
