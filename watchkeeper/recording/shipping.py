"""The app's half of the collector: ship the buffer's events to it, aggregate nothing here.

The :class:`ShippingWorker` replaces the flush worker when a collector is configured. It takes
events off the same bounded buffer (the hot path does not change), encodes them compactly
(:mod:`~watchkeeper.recording.codec`) and sends them over one stream socket in frames of at most
``batch_size`` events, every ``interval`` seconds or sooner when the buffer fills. Everything
else — pricing, redaction, rollups, health, metrics, writing — happens in the collector, on
another core, where its allocations cost the app's garbage collector nothing.

Frames stay in memory until the collector acknowledges them (at most ``window`` of them, a
bounded amount) and are sent again after a reconnection, so a collector killed mid-stream loses
at most what it held itself. While no collector can be had, events wait in the buffer (counted
as dropped if it fills, as always); after ``fallback_after`` seconds without one, the recorder's
own flush worker takes over the buffer and writes to the store itself, and the shipper looks for
a collector again now and then. Nothing is lost silently, and nothing ever blocks the app.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from watchkeeper.recording.codec import decode_events, encode_events
from watchkeeper.recording.containment import Containment
from watchkeeper.recording.frames import ACK, HEADER, SEQUENCE, frame, frame_length
from watchkeeper.recording.stats import RecorderCounters
from watchkeeper.recording.worker import Buffered, FlushWorker, take_events, wait_for_worker

logger = logging.getLogger("watchkeeper")

WINDOW = 128
"""Frames sent and not yet acknowledged (written by the collector) before the sender waits:
events wait in the app's bounded buffer meanwhile, as they would for a slow store."""
RECONNECT_FIRST_DELAY = 0.2
RECONNECT_MAX_DELAY = 5.0
FALLBACK_AFTER_SECONDS = 30.0
"""Without a collector for this long (none running, none starting), the app writes itself."""
COLLECTOR_RETRY_SECONDS = 30.0
"""How often a recorder writing for itself looks whether a collector can be had again."""


class Collector(Protocol):
    """Where a shipping worker finds its collector (started first if that is its job)."""

    def connect(self) -> socket.socket | None:
        """A socket with the hello answered ``ready``, or ``None`` if none can be had now."""
        ...

    def before_fallback(self) -> None:
        """Called once before the recorder starts writing for itself (open the store)."""
        ...


class ShippingWorker:
    def __init__(
        self,
        buffer: deque[Buffered],
        counters: RecorderCounters,
        containment: Containment,
        collector: Collector,
        fallback: Callable[[], FlushWorker],
        service: str,
        instance: str,
        batch_size: int,
        interval: float,
        window: int = WINDOW,
        fallback_after: float = FALLBACK_AFTER_SECONDS,
    ) -> None:
        self._buffer = buffer
        self._counters = counters
        self._containment = containment
        self._collector = collector
        self._fallback = fallback
        self._service = service
        self._instance = instance
        self._batch_size = batch_size
        self._interval = interval
        self._window = window
        self._fallback_after = fallback_after
        self._socket: socket.socket | None = None
        self._sequence = 0
        # (sequence, the framed bytes, events): sent or still to send, not acknowledged.
        self._unacked: deque[tuple[int, bytes, int]] = deque()
        self._unsent = 0
        self._reconnect_delay = RECONNECT_FIRST_DELAY
        self._reconnect_at = 0.0
        self._unreachable_since: float | None = None
        self._writing_itself: FlushWorker | None = None
        self._fallen_back_at = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="watchkeeper-ship", daemon=True)

    # -- what the recorder sees ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events shipped and not yet acknowledged, or waiting to be written by this process."""
        writer = self._writing_itself
        own = writer.pending if writer is not None else 0
        return own + sum(events for _, _, events in self._unacked)

    @property
    def connected(self) -> bool:
        return self._socket is not None

    @property
    def writing_itself(self) -> bool:
        """Whether the recorder writes to the store itself, no collector being reachable."""
        return self._writing_itself is not None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything submitted is acknowledged by the collector (or written)."""
        deadline = time.monotonic() + timeout
        if not wait_for_worker(self._thread, self._wake, self._idle, self._settled, timeout):
            return False
        writer = self._writing_itself
        return writer is None or writer.wait_idle(max(0.0, deadline - time.monotonic()))

    def _settled(self) -> bool:
        if self._writing_itself is not None:
            return not self._busy
        return not (self._busy or self._buffer or self._unacked)

    def stop(self, timeout: float) -> None:
        """Ship what is buffered within ``timeout``; what no collector took is written here."""
        deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=max(0.1, min(timeout, 5.0)))
        self._close()
        if self._buffer or self._unacked:
            self._take_back_unacknowledged()
            if self._writing_itself is None:
                self._fall_back()
        writer, self._writing_itself = self._writing_itself, None
        if writer is not None:
            writer.stop(max(0.5, deadline - time.monotonic()))

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._cycle()
            except Exception as error:
                self._close()
                self._containment.report("shipping events to the collector", error)
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    def _cycle(self) -> None:
        with self._idle:
            self._busy = True
        if self._writing_itself is not None:
            self._look_for_the_collector_again()
            return
        while not self._stopping.is_set():
            if self._socket is None and not self._reconnect():
                return
            if self._unsent:
                self._send_unsent()
                continue
            self._read_acks()
            count = min(len(self._buffer), self._batch_size)
            if not count or len(self._unacked) >= self._window or self._socket is None:
                return
            self._ship(count)

    def _ship(self, count: int) -> None:
        taken = take_events(self._buffer, count, self._counters)
        self._sequence += 1
        document = encode_events(taken.batch(self._service, self._instance))
        data = frame(SEQUENCE.pack(self._sequence) + document)
        self._unacked.append((self._sequence, data, count))
        self._unsent += 1
        self._send_unsent()

    def _send_unsent(self) -> None:
        connection = self._socket
        if connection is None:
            return
        try:
            for index in range(len(self._unacked) - self._unsent, len(self._unacked)):
                connection.sendall(self._unacked[index][1])
                self._unsent -= 1
        except OSError as error:
            self._lost_connection(error)

    def _read_acks(self) -> None:
        """Take the acknowledgements that have arrived, without waiting for more.

        A collector that is alive but slow to write (its store is down) is waited for, not
        left: sending the frames again elsewhere would store them twice. A collector that
        dies closes the socket, which is noticed here.
        """
        connection = self._socket
        if connection is None:
            return
        try:
            while True:
                readable, _, _ = select.select([connection], [], [], 0.0)
                if not readable:
                    return
                self._acknowledged(read_frame(connection))
        except OSError as error:
            self._lost_connection(error)

    def _acknowledged(self, payload: bytes) -> None:
        # What the collector's own buffer could not take, it counts itself: the figure of
        # events it accepted is not counted here again.
        sequence, _accepted = ACK.unpack(payload)
        while self._unacked and self._unacked[0][0] <= sequence:
            _, _, events = self._unacked.popleft()
            self._counters.shipped += events

    # -- connections -----------------------------------------------------------------------------

    def _reconnect(self) -> bool:
        now = time.monotonic()
        if now < self._reconnect_at:
            return False
        connection = self._collector.connect()
        if connection is None:
            if self._unreachable_since is None:
                self._unreachable_since = now
            self._reconnect_at = time.monotonic() + self._reconnect_delay
            self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_DELAY)
            if time.monotonic() - self._unreachable_since >= self._fallback_after:
                logger.warning(
                    "Watchkeeper cannot reach its collector; this process writes its events "
                    "to the store itself until the collector is back."
                )
                self._take_back_unacknowledged()
                self._fall_back()
            return False
        if self._unreachable_since is not None:
            logger.info("Watchkeeper reached its collector again.")
        self._socket = connection
        self._unreachable_since = None
        self._reconnect_delay = RECONNECT_FIRST_DELAY
        # Everything not acknowledged goes again, in order: the old collector may be gone.
        self._unsent = len(self._unacked)
        return True

    def _lost_connection(self, error: BaseException) -> None:
        logger.info("Watchkeeper lost its collector (%s); reconnecting.", type(error).__name__)
        self._close()
        self._unreachable_since = time.monotonic()

    def _close(self) -> None:
        connection, self._socket = self._socket, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def _take_back_unacknowledged(self) -> None:
        """Put what no collector acknowledged back at the front of the buffer, in order."""
        events: list[Buffered] = []
        for _, data, _ in self._unacked:
            batch = decode_events(data[HEADER.size + SEQUENCE.size :])
            events.extend(batch.spans)
            events.extend(batch.logs)
            events.extend(batch.metrics)
            events.extend(batch.snapshots)
            events.extend(batch.validations)
            events.extend(batch.session_marks)
        self._unacked.clear()
        self._unsent = 0
        self._buffer.extendleft(reversed(events))
        # They will be taken off the buffer again: count them once.
        self._counters.drained -= len(events)

    def _fall_back(self) -> None:
        self._collector.before_fallback()
        self._writing_itself = self._fallback()
        self._fallen_back_at = time.monotonic()

    def _look_for_the_collector_again(self) -> None:
        if time.monotonic() - self._fallen_back_at < COLLECTOR_RETRY_SECONDS:
            return
        self._fallen_back_at = time.monotonic()
        connection = self._collector.connect()
        if connection is None:
            return
        writer, self._writing_itself = self._writing_itself, None
        if writer is not None:
            # Its batches are aggregated already: it writes them before shipping resumes.
            writer.stop(COLLECTOR_RETRY_SECONDS)
        logger.info("Watchkeeper reached a collector again; shipping events to it.")
        self._socket = connection
        self._unreachable_since = None


def read_frame(connection: socket.socket) -> bytes:
    """One whole frame from a blocking socket."""
    header = _read_exactly(connection, HEADER.size)
    return _read_exactly(connection, frame_length(header))


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise ConnectionResetError("the collector closed the connection")
        chunks += chunk
    return bytes(chunks)
