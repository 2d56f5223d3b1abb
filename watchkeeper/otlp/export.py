"""OpenTelemetry out: every recorded span, also sent to an OTLP/HTTP endpoint.

A batch observer on the flush worker hands the batch's spans to a bounded queue, which costs the
worker an append; a thread of its own turns them into OpenTelemetry SDK spans and sends them with
the official ``OTLPSpanExporter`` (the ``otlp`` extra), 512 a request, so a slow or unreachable
endpoint never holds up recording, aggregation or the store. The spans are the ones the store
gets: priced and redacted.

Every span that is not delivered is counted with the recorder's losses, by reason
(``export_queue_full``, ``export_failed``, ``export_shutdown``), so ``/metrics``, health and the
loss log show it. The SDK logs each failed attempt; on this thread those lines are held back and
the last one is told at most once per ``WATCHKEEPER_LOSS_LOG_INTERVAL``, so an endpoint down for
an hour costs a line a minute. Header values (credentials) are never logged.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from watchkeeper._version import __version__
from watchkeeper.config import Settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import Span
from watchkeeper.otlp.as_otel import otel_span
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.stats import DropReason

logger = logging.getLogger("watchkeeper")

EXPORT_BATCH = 512
"""Spans per request: the SDK's BatchSpanProcessor's default, which receivers are sized for."""
SDK_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""Where the SDK's exporter logs its failed attempts."""
THREAD_NAME = "watchkeeper-otlp-export"
ABANDON_JOIN_SECONDS = 1.0
"""After a shutdown that ends the SDK's wait between retries: time to notice and stop."""


class OtlpExporter:
    """Install with ``recorder.observers.append(exporter)``; :meth:`close` after the recorder
    stopped, so the spans of its last flush are sent too."""

    def __init__(self, recorder: Recorder, settings: Settings) -> None:
        if settings.otlp_export_endpoint is None:
            raise ValueError("OtlpExporter needs WATCHKEEPER_OTLP_EXPORT_ENDPOINT")
        self._recorder = recorder
        self._endpoint = settings.otlp_export_endpoint
        # Only the host is ever logged: the URL may carry credentials.
        self.destination = urlsplit(self._endpoint).hostname or "the endpoint"
        self._headers = {
            name: value.get_secret_value() for name, value in settings.otlp_export_headers.items()
        }
        self._timeout = settings.otlp_export_timeout
        self._shutdown_timeout = settings.shutdown_timeout
        self._log_interval = settings.loss_log_interval
        self._capacity = settings.buffer_size
        self._resource = Resource.create(
            {SERVICE_NAME: settings.service, SERVICE_INSTANCE_ID: settings.instance}
        )
        self._scope = InstrumentationScope("watchkeeper", __version__)
        self._held_back = _HeldBack()
        self.exported = 0
        """Spans the endpoint accepted (for tests and figures)."""
        self._fresh_state()
        # Weakly: the interpreter keeps fork hooks for good, and must not keep exporters so.
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def _fresh_state(self) -> None:
        """Queue, thread and exporter, all made anew (at start, and in a forked child)."""
        self._lock = threading.Condition()
        self._queue: deque[Sequence[Span]] = deque()
        self._queued = 0
        self._closing = False
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._exporter: SpanExporter | None = None
        self._cause_logged_at: float | None = None

    def after_fork_in_child(self) -> None:
        """The parent's thread and connections did not come along; what it queued is its own
        to send."""
        self._held_back.release_all()
        self._fresh_state()

    @property
    def queued(self) -> int:
        """Spans waiting to be sent."""
        return self._queued

    def __call__(self, batch: Batch) -> None:
        """On the flush worker: queue the batch's spans, or count those there is no room for."""
        spans = batch.spans
        if not spans:
            return
        with self._lock:
            room = self._capacity - self._queued
            taken = spans if len(spans) <= room else spans[: max(room, 0)]
            if taken:
                self._queue.append(taken)
                self._queued += len(taken)
                if self._thread is None:
                    self._start_thread()
                self._lock.notify()
        lost = len(spans) - len(taken)
        if lost:
            self._recorder.drop(DropReason.EXPORT_QUEUE_FULL, lost)

    def _start_thread(self) -> None:
        """Started with the first spans, so a runtime that never records starts nothing."""
        self._closing = self._abandoned = False
        self._exporter = OTLPSpanExporter(
            endpoint=self._endpoint, headers=self._headers, timeout=self._timeout
        )
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Send what is queued (within ``WATCHKEEPER_SHUTDOWN_TIMEOUT``), then stop.

        Whatever is still unsent then is counted and told. Spans observed afterwards (a
        recorder started again) start a fresh thread.
        """
        with self._lock:
            thread, exporter = self._thread, self._exporter
            self._closing = True
            self._lock.notify_all()
        if thread is None or exporter is None:
            return
        thread.join(self._shutdown_timeout)
        if thread.is_alive():
            with self._lock:
                self._abandoned = True
            # Ends the SDK's waits between retries; a request in flight runs to its timeout.
            exporter.shutdown()
            thread.join(ABANDON_JOIN_SECONDS)
        else:
            exporter.shutdown()
        with self._lock:
            left = self._queued
            self._queue.clear()
            self._queued = 0
            self._thread = self._exporter = None
        if left:
            self._recorder.drop(DropReason.EXPORT_SHUTDOWN, left)
            logger.warning(
                "Watchkeeper stopped before exporting %d spans to %s (counted as dropped, "
                "reason: export_shutdown).",
                left,
                self.destination,
            )

    def _run(self) -> None:
        self._held_back.hold(threading.get_ident())
        try:
            while (chunk := self._next_chunk()) is not None:
                self._send(chunk)
        finally:
            self._held_back.release(threading.get_ident())

    def _next_chunk(self) -> list[Span] | None:
        """Up to EXPORT_BATCH spans, waiting for some; ``None`` once closing and empty."""
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue or self._abandoned:
                return None
            chunk: list[Span] = []
            while self._queue and len(chunk) < EXPORT_BATCH:
                spans = self._queue.popleft()
                room = EXPORT_BATCH - len(chunk)
                if len(spans) > room:
                    self._queue.appendleft(spans[room:])
                    spans = spans[:room]
                chunk.extend(spans)
            self._queued -= len(chunk)
            return chunk

    def _send(self, chunk: list[Span]) -> None:
        exporter = self._exporter
        try:
            if exporter is None:
                raise RuntimeError("the exporter was closed while sending")
            resource, scope = self._resource, self._scope
            result = exporter.export([otel_span(span, resource, scope) for span in chunk])
        except Exception as error:
            self._recorder.drop(DropReason.EXPORT_FAILED, len(chunk))
            self._recorder.report_internal_error("exporting spans", error, background=True)
            return
        if result is SpanExportResult.SUCCESS:
            self.exported += len(chunk)
            return
        self._recorder.drop(DropReason.EXPORT_FAILED, len(chunk))
        self._tell_cause()

    def _tell_cause(self) -> None:
        """Say why exports fail, at most once per interval (the losses are logged by count)."""
        now = time.monotonic()
        last = self._cause_logged_at
        if last is not None and now - last < self._log_interval:
            return
        self._cause_logged_at = now
        logger.warning(
            "Watchkeeper cannot export spans to %s: %s. They stay stored; the lost exports "
            "are counted as dropped (reason: export_failed).",
            self.destination,
            self._held_back.last or "the exporter gave no reason",
        )


class _HeldBack(logging.Filter):
    """Keeps the SDK exporter's lines off the log when Watchkeeper's thread logs them, keeping
    the last one; the SDK's exporters used by the app itself log as usual."""

    def __init__(self) -> None:
        super().__init__()
        self._threads: set[int] = set()
        self.last: str | None = None

    def hold(self, thread: int) -> None:
        if not self._threads:
            for name in SDK_LOGGERS:
                logging.getLogger(name).addFilter(self)
        self._threads.add(thread)

    def release(self, thread: int) -> None:
        self._threads.discard(thread)
        if not self._threads:
            for name in SDK_LOGGERS:
                logging.getLogger(name).removeFilter(self)

    def release_all(self) -> None:
        for thread in list(self._threads):
            self.release(thread)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread not in self._threads:
            return True
        self.last = record.getMessage()
        return False


def _after_fork(exporter: weakref.ref[OtlpExporter]) -> None:
    alive = exporter()
    if alive is not None:
        alive.after_fork_in_child()
