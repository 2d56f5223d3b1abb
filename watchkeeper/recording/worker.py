"""The background flush worker: drains the buffer, aggregates, writes batches, retries.

It is the only consumer of the buffer and the only writer to the store. Aggregation (enrichers,
redaction, live windows, batch observers) runs every cycle whatever the store's state, so health,
metrics and the live feed keep seeing the app while the store is down. Only writing waits: built
batches queue in :class:`~watchkeeper.recording.waiting.WaitingBatches` (bounded by events),
what overflows it goes to the disk :class:`~watchkeeper.recording.spool.Spool` (or, without
one, is dropped and counted), and everything is written in order, spooled files first, with
backoff between attempts, once the store takes them again. Losses are logged at a bounded rate
and written as ``watchkeeper.dropped`` metric points, here, off the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchkeeper.model.batch import Batch
from watchkeeper.model.error_groups import ErrorDelta, build_error_deltas
from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.model.events import (
    Event,
    LogRecord,
    MetricKind,
    MetricPoint,
    SessionMark,
    Snapshot,
    Span,
    ValidationResult,
)
from watchkeeper.model.rollups import RollupDelta, RollupKey, build_rollups
from watchkeeper.model.sessions import build_sessions
from watchkeeper.model.store import Sink
from watchkeeper.recording.containment import Containment
from watchkeeper.recording.spans import ActiveSpan
from watchkeeper.recording.spool import Spool
from watchkeeper.recording.stats import (
    DROPPED_METRIC,
    DropReason,
    LossLog,
    RecorderCounters,
    app_events,
)
from watchkeeper.recording.waiting import WaitingBatches
from watchkeeper.recording.windows import LiveWindows
from watchkeeper.redaction import Redactor

SpanEnricher = Callable[[Sequence[Span]], None]
"""Fills in fields that are too costly for the request path (e.g. prices), a batch at a time."""

BatchObserver = Callable[[Batch], None]
"""Sees every batch the worker built (e.g. metrics exposition, a live feed); must be quick."""

logger = logging.getLogger("watchkeeper")

RETRY_FIRST_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
FAILURES_BEFORE_BLAMING_THE_BATCH = 3
"""A sink error outside the store contract, raised by the same batch this many times in a row,
is taken for the batch's fault (a value the sink chokes on) and isolated like a rejection."""
OUTAGE_ERRORS = (StoreUnavailable, OSError)
"""Errors that say the store is away (the contract's, and the network's): always retried."""


class Receipt:
    """Put in the buffer behind events whose fate a sender waits for (an app shipping to a
    collector): settled once everything before it is written, spooled, or counted as lost."""

    __slots__ = ("_settle",)

    def __init__(self, settle: Callable[[], object]) -> None:
        self._settle = settle

    def settle(self) -> None:
        self._settle()


Buffered = Event | Receipt
"""What the recorder's buffer holds."""


@dataclass(slots=True)
class TakenEvents:
    """Events taken off the buffer, sorted by kind."""

    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    validations: list[ValidationResult] = field(default_factory=list)
    marks: list[SessionMark] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)

    def batch(self, service: str, instance: str) -> Batch:
        """As a batch without rollups or sessions: for whoever aggregates them later."""
        return Batch(
            service=service,
            instance=instance,
            spans=self.spans,
            logs=self.logs,
            metrics=self.metrics,
            snapshots=self.snapshots,
            validations=self.validations,
            session_marks=self.marks,
        )


def take_events(buffer: deque[Buffered], count: int, counters: RecorderCounters) -> TakenEvents:
    """Take ``count`` events off the front of ``buffer``; what is no event is counted invalid."""
    taken = TakenEvents()
    route: dict[type, list[Any]] = {
        ActiveSpan: taken.spans,
        Span: taken.spans,
        LogRecord: taken.logs,
        MetricPoint: taken.metrics,
        Snapshot: taken.snapshots,
        ValidationResult: taken.validations,
        SessionMark: taken.marks,
        Receipt: taken.receipts,
    }
    popleft = buffer.popleft
    for _ in range(count):
        event = popleft()
        target = route.get(type(event))
        if target is None:
            counters.drop(DropReason.INVALID)
            continue
        target.append(event)
    counters.drained += count - len(taken.receipts)
    return taken


WAKE_EVERY_SECONDS = 0.05
"""How often a caller waiting on a worker wakes it: one cycle of the worker per period."""


def wait_for_worker(
    thread: threading.Thread,
    wake: threading.Event,
    idle: threading.Condition,
    done: Callable[[], bool],
    timeout: float,
) -> bool:
    """Wake ``thread``'s worker until ``done()`` holds (under ``idle``); ``False`` on timeout.

    The worker is woken once a period, not each time it goes idle: a worker with nothing to do
    but wait (for acknowledgements, for a store backing off) would otherwise cycle without
    pause, the caller and the worker waking each other, and burn the cores others need.
    """
    deadline = time.monotonic() + timeout
    with idle:
        while not done():
            wake.set()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not thread.is_alive():
                return False
            idle.wait_for(done, min(remaining, WAKE_EVERY_SECONDS))
    return True


class FlushWorker:
    def __init__(
        self,
        buffer: deque[Buffered],
        sink: Sink,
        counters: RecorderCounters,
        live: LiveWindows,
        containment: Containment,
        service: str,
        instance: str,
        batch_size: int,
        flush_interval: float,
        waiting_capacity: int,
        losses: LossLog,
        spool: Spool | None = None,
        enrichers: Sequence[SpanEnricher] = (),
        redactor: Redactor | None = None,
        observers: Sequence[BatchObserver] = (),
    ) -> None:
        self._buffer = buffer
        self._observers = observers
        self._redactor = redactor
        # The recorder's own list, not a copy: integrations instrumented after start (pricing)
        # add their enrichers to a recorder that is already running.
        self._enrichers = enrichers
        self._sink = sink
        self._counters = counters
        self._live = live
        self._containment = containment
        self._service = service
        self._instance = instance
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._waiting = WaitingBatches(waiting_capacity)
        self._spool = spool
        self._losses = losses
        self._retry_delay = RETRY_FIRST_DELAY
        self._unexplained_failures = 0
        self._retry_at = 0.0
        self._store_down = False
        self._last_spool_error: str | None = None
        # Loss figures for the next batch: not in the buffer, so they are not counted (or
        # dropped) as the app's events, and never wait behind a full buffer.
        self._figures: list[MetricPoint] = []
        # Receipts behind a built batch's events, by the batch's identity: settled with it.
        self._receipts: dict[int, list[Receipt]] = {}
        self._thread = threading.Thread(target=self._run, name="watchkeeper-flush", daemon=True)

    @property
    def pending(self) -> int:
        """Events built into batches that wait for the store."""
        return self._waiting.events

    @property
    def spooled(self) -> int:
        """Events in spool files that wait for the store."""
        return self._spool.events if self._spool is not None else 0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the buffer is empty and nothing is pending, spooled or being written."""
        return self._wait_until(self._written, timeout)

    def _written(self) -> bool:
        spool = self._spool
        # Before its first look, the spool may hold an earlier process's files.
        spooled = spool is not None and (spool.files > 0 or not spool.scanned)
        return not (self._busy or self._buffer or self._figures or self._waiting or spooled)

    def _settled(self) -> bool:
        # With the store down, what is left goes to the spool at once: waiting out the whole
        # shutdown timeout would only delay the app's exit.
        aggregated = not (self._busy or self._buffer or self._figures)
        return self._written() or (aggregated and self._spool is not None and self._store_down)

    def _wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        return wait_for_worker(self._thread, self._wake, self._idle, done, timeout)

    def stop(self, timeout: float) -> None:
        """Flush what is buffered (within ``timeout``), spool what is not, then stop.

        What is left after that (no spool, or a worker stuck in the store) is counted, logged,
        and, with a spool, its figure is spooled for the next process to store.
        """
        self._wait_until(self._settled, timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=max(0.1, min(timeout, 5.0)))
        abandoned = self._waiting.take_all()
        for batch in abandoned:
            self._settle(batch)
        buffered = sum(1 for event in self._buffer if not isinstance(event, Receipt))
        left = buffered + sum(map(app_events, abandoned))
        if left:
            self._counters.drop(DropReason.SHUTDOWN, left)
            self._buffer.clear()
        figures = self._figures + self._loss_figures(self._losses.report(final=True))
        self._figures = []
        if figures and self._spool is not None and not self._thread.is_alive():
            self._spill(self._assemble([], [], figures, [], [], []))

    def _run(self) -> None:
        while not self._stopping.is_set():
            timeout = self._flush_interval
            if self._waiting:
                # Retry when the backoff is over, not only a whole flush interval later.
                timeout = min(timeout, max(0.0, self._retry_at - time.monotonic()))
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                self._cycle()
                self._figures.extend(self._loss_figures(self._losses.report()))
            except Exception as error:
                self._containment.report("flush worker", error)
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
        try:
            self._spool_everything()
        except Exception as error:
            self._containment.report("spooling at shutdown", error)

    def _spool_everything(self) -> None:
        """On stopping: aggregate what is buffered, and spool it with everything waiting."""
        if self._spool is None or not (self._buffer or self._figures or self._waiting):
            return
        batches = self._waiting.take_all()
        while (batch := self._drain()) is not None:
            batches.append(batch)
        for batch in batches:
            self._spill(batch)

    def _loss_figures(self, losses: Mapping[str, int]) -> list[MetricPoint]:
        now = time.time()
        return [
            MetricPoint(now, DROPPED_METRIC, MetricKind.COUNTER, count, None, {"reason": reason})
            for reason, count in losses.items()
        ]

    def _cycle(self) -> None:
        """Aggregate everything buffered, and write what waits unless the store is backing off.

        One batch drained, then one written, in turn: a busy app neither starves the store of
        writes nor the live figures of aggregation.
        """
        waiting = self._waiting
        spool = self._spool
        while not self._stopping.is_set():
            with self._idle:
                self._busy = True
            batch = self._drain()
            if batch is not None:
                for pushed_out in waiting.add(batch):
                    self._spill(pushed_out)
            if time.monotonic() >= self._retry_at and (
                waiting or (spool is not None and spool.has_files())
            ):
                if self._write_next():
                    self._retry_delay = RETRY_FIRST_DELAY
                    self._store_down = False
                else:
                    self._retry_at = time.monotonic() + self._retry_delay
                    self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_DELAY)
                    self._store_down = True
            elif batch is None:
                return

    def _write_next(self) -> bool:
        """Write the oldest batch: a spooled one (older than any in memory), else the first
        waiting; ``False`` if the store refused it, which stays first in line."""
        spool = self._spool
        if spool is not None and spool.has_files():
            claim = spool.claim_oldest()
            if claim is not None:
                if self._write(claim.batch):
                    claim.written()
                    return True
                spool.give_back(claim)
                return False
        # No spooled file this process could take (others are replaying them): memory's turn.
        waiting = self._waiting
        if not waiting:
            return True
        batch = waiting.first()
        if self._write(batch):
            waiting.remove_first()
            self._settle(batch)
            return True
        return False

    def _settle(self, batch: Batch) -> None:
        """The batch is written, spooled or counted as lost: whoever waits on it may go on."""
        for receipt in self._receipts.pop(id(batch), ()):
            try:
                receipt.settle()
            except Exception as error:
                self._containment.report("settling a receipt", error)

    def _spill(self, batch: Batch) -> None:
        """Keep a batch the store cannot take yet on disk, or count it lost without a spool."""
        try:
            self._spill_or_count(batch)
        finally:
            self._settle(batch)

    def _spill_or_count(self, batch: Batch) -> None:
        if self._spool is None:
            self._counters.drop(DropReason.STORE_UNAVAILABLE, app_events(batch))
            return
        try:
            self._spool.spill(batch)
        except OSError as error:
            self._counters.drop(DropReason.SPOOL_UNWRITABLE, app_events(batch))
            reason = f"{type(error).__name__}: {error}"
            if reason != self._last_spool_error:
                # The loss itself is logged with the others; this says why, once per cause.
                logger.warning("Watchkeeper cannot write its spool (%s).", reason)
            self._last_spool_error = reason
        else:
            self._last_spool_error = None

    def _drain(self) -> Batch | None:
        drained = min(len(self._buffer), self._batch_size)
        if not drained and not self._figures:
            return None
        taken = take_events(self._buffer, drained, self._counters)
        spans, logs, metrics = taken.spans, taken.logs, taken.metrics
        snapshots, validations, marks = taken.snapshots, taken.validations, taken.marks
        metrics.extend(self._figures)
        self._figures = []
        for enrich in self._enrichers:
            try:
                enrich(spans)
            except Exception as error:
                self._containment.report("enriching spans", error)
        if self._redactor is not None:
            _redact(self._redactor, spans, logs, snapshots, validations)
        try:
            rollups = build_rollups(spans)
        except Exception as error:
            self._containment.report("aggregating spans", error)
            spans = self._valid_spans(spans)
            rollups = build_rollups(spans)
        self._live.observe(spans)
        batch = self._assemble(spans, logs, metrics, snapshots, validations, marks, rollups)
        if taken.receipts:
            self._receipts[id(batch)] = taken.receipts
        for observe in self._observers:
            try:
                observe(batch)
            except Exception as error:
                self._containment.report("observing a batch", error)
        return batch

    def _assemble(
        self,
        spans: Sequence[Span],
        logs: Sequence[LogRecord],
        metrics: Sequence[MetricPoint],
        snapshots: Sequence[Snapshot],
        validations: Sequence[ValidationResult],
        marks: Sequence[SessionMark],
        rollups: Mapping[RollupKey, RollupDelta] | None = None,
    ) -> Batch:
        return Batch(
            service=self._service,
            instance=self._instance,
            spans=spans,
            logs=logs,
            metrics=metrics,
            snapshots=snapshots,
            validations=validations,
            session_marks=marks,
            rollups=build_rollups(spans) if rollups is None else rollups,
            sessions=build_sessions(spans, marks),
            errors=self._error_groups(spans, logs),
        )

    def _error_groups(
        self, spans: Sequence[Span], logs: Sequence[LogRecord]
    ) -> dict[str, ErrorDelta]:
        try:
            return build_error_deltas(spans, logs)
        except Exception as error:  # a malformed event: its batch is still written
            self._containment.report("grouping errors", error)
            return {}

    def _halves(self, batch: Batch) -> tuple[Batch, Batch]:
        events: list[Event] = [
            *batch.spans,
            *batch.logs,
            *batch.metrics,
            *batch.snapshots,
            *batch.validations,
            *batch.session_marks,
        ]
        middle = len(events) // 2
        return self._batch_of(events[:middle]), self._batch_of(events[middle:])

    def _batch_of(self, events: Sequence[Event]) -> Batch:
        def of(kind: type[Any]) -> list[Any]:
            return [event for event in events if isinstance(event, kind)]

        return self._assemble(
            of(Span),
            of(LogRecord),
            of(MetricPoint),
            of(Snapshot),
            of(ValidationResult),
            of(SessionMark),
        )

    def _failed(self, error: BaseException) -> None:
        self._counters.store_failures += 1
        self._counters.last_flush_error = f"{type(error).__name__}: {error}"

    def _write_isolating(self, batch: Batch, error: BatchRejected) -> None:
        """Write what can be written of a rejected batch, halving it to find the bad events.

        Only the failure path pays for this: log2(n) extra writes to lose one event, not n.
        """
        if len(batch) <= 1:
            self._counters.drop(DropReason.REJECTED, app_events(batch))
            self._counters.last_flush_error = f"{type(error).__name__}: {error}"
            self._containment.report("writing an event the store rejected", error)
            return
        for half in self._halves(batch):
            if not len(half):
                continue
            try:
                self._sink.write(half)
            except BatchRejected as rejected:
                self._write_isolating(half, rejected)
                continue
            except OUTAGE_ERRORS as unavailable:
                # The store went away half-way: the first half is stored, so retrying the whole
                # batch would duplicate it. Count this half as lost instead.
                self._counters.drop(DropReason.REJECTED, app_events(half))
                self._containment.report("isolating a rejected batch", unavailable)
                continue
            except Exception as unexplained:  # the same kind that got the batch blamed
                self._write_isolating(half, BatchRejected(f"{type(unexplained).__name__}"))
                continue
            self._counters.flushed += app_events(half)

    def _valid_spans(self, spans: list[Span]) -> list[Span]:
        """Keep the spans that aggregate on their own; count the others as invalid drops.

        Only reached when a batch failed, so one malformed span costs its batch nothing.
        """
        valid = []
        for span in spans:
            try:
                build_rollups([span])
            except Exception:
                continue
            valid.append(span)
        self._counters.drop(DropReason.INVALID, len(spans) - len(valid))
        return valid

    def _write(self, batch: Batch) -> bool:
        started = time.monotonic()
        try:
            self._sink.write(batch)
        except BatchRejected as error:
            # The data itself can never be stored: retrying as is would block the pipeline for
            # good, so keep the good events and drop (and count) only the bad ones.
            self._unexplained_failures = 0
            self._write_isolating(batch, error)
            return True
        except OUTAGE_ERRORS as error:
            self._unexplained_failures = 0
            self._failed(error)
            return False
        except Exception as error:
            # Outside the store contract: a sink's bug, or a value it chokes on. Retried like an
            # outage at first; if the same batch keeps failing, it is blamed and isolated, so
            # one bad event can never stop every write after it.
            self._unexplained_failures += 1
            if self._unexplained_failures < FAILURES_BEFORE_BLAMING_THE_BATCH:
                self._failed(error)
                return False
            self._unexplained_failures = 0
            self._containment.report("writing a batch the sink keeps failing on", error)
            self._write_isolating(batch, BatchRejected(f"{type(error).__name__}: {error}"))
            return True
        finished = time.time()
        counters = self._counters
        counters.flushed += app_events(batch)
        counters.batches_written += 1
        counters.last_flush_at = finished
        counters.last_flush_seconds = time.monotonic() - started
        counters.last_flush_error = None
        counters.flush_lag_seconds = finished - _oldest_time(batch)
        return True


def _redact(
    redactor: Redactor,
    spans: list[Span],
    logs: list[LogRecord],
    snapshots: list[Snapshot],
    validations: list[ValidationResult],
) -> None:
    for span in spans:
        if span.attributes:
            span.attributes = redactor.mapping(span.attributes)
        if span.error_message:
            span.error_message = redactor.text(span.error_message)
    for log in logs:
        log.message = redactor.text(log.message)
        if log.attributes:
            log.attributes = redactor.mapping(log.attributes)
        if log.exception:
            # A traceback ends with the exception's message, which may name a person.
            log.exception = redactor.text(log.exception)
    for snapshot in snapshots:
        snapshot.data = redactor.mapping(snapshot.data)
    for validation in validations:
        validation.message = redactor.text(validation.message)
        if isinstance(validation.observed, str):
            validation.observed = redactor.text(validation.observed)


def _oldest_time(batch: Batch) -> float:
    """When the oldest event in a batch happened; events arrive in order, so check the heads."""
    candidates = [time.time()]
    if batch.spans:
        first = batch.spans[0]
        candidates.append(first.start + first.duration)
    for events in (batch.logs, batch.metrics, batch.snapshots, batch.validations):
        if events:
            candidates.append(events[0].time)
    return min(candidates)
