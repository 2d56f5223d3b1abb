"""The live feed: new spans, integration health changes and headline figures over a WebSocket.

In an instrumented app the :class:`LiveHub` is a batch observer on the recorder, so spans reach
browsers as soon as the flush worker has them. Under ``watchkeeper serve`` nothing is recorded
in-process, so the hub polls the store for spans newer than the last it sent.

Each subscriber has a bounded queue. A client too slow to keep up is disconnected (close code
1013, "try again later") instead of letting its queue, and the server's memory, grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.events import Span
from watchkeeper.model.ids import format_span_id, format_trace_id
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import StoredSpan
from watchkeeper.storage.errors import DATABASE_ERRORS
from watchkeeper.storage.handle import StoreHandle

logger = logging.getLogger("watchkeeper")

SUBSCRIBER_QUEUE = 256
SEND_TIMEOUT = 5.0
SPANS_PER_MESSAGE = 200
TRY_AGAIN_LATER = 1013
Message = dict[str, Any]


def span_message(span: Span) -> Message:
    return {
        "trace_id": format_trace_id(span.trace_id),
        "span_id": format_span_id(span.span_id),
        "parent_id": format_span_id(span.parent_id) if span.parent_id else None,
        "kind": span.kind.value,
        "name": span.name,
        "start": span.start,
        "duration": span.duration,
        "status": span.status.value,
        "user_id": span.user_id,
        "org_id": span.org_id,
        "session_id": span.session_id,
        "model": span.model,
        "cost": span.cost,
    }


def stored_span_message(span: StoredSpan) -> Message:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name,
        "start": span.start.timestamp(),
        "duration": span.duration,
        "status": span.status,
        "user_id": span.user_id,
        "org_id": span.org_id,
        "session_id": span.session_id,
        "model": span.model,
        "cost": span.cost,
    }


def visible(message: Message, scope: Scope) -> Message | None:
    """The part of ``message`` a subscriber of ``scope`` may see (``None``: nothing of it).

    Spans are kept when they are in the scope's organisation and user; figures and health are
    built per scope already (they carry the scope they were built for).
    """
    if message.get("type") != "spans" or (scope.org_id is None and scope.user_id is None):
        return message
    spans = [
        span
        for span in message["spans"]
        if (scope.org_id is None or span.get("org_id") == scope.org_id)
        and (scope.user_id is None or span.get("user_id") == scope.user_id)
    ]
    if not spans:
        return None
    return {**message, "spans": spans, "dropped": 0}


@dataclass(eq=False)
class Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Message]
    scope: Scope = field(default_factory=Scope.everything)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: Message) -> None:
        """Runs on the subscriber's loop: enqueue, or flag the client as too slow."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()


class LiveHub:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE) -> None:
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self.disconnected_slow = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def scopes(self) -> set[Scope]:
        with self._lock:
            return {subscriber.scope for subscriber in self._subscribers}

    def subscribe(self, scope: Scope | None = None) -> Subscriber:
        subscriber = Subscriber(
            asyncio.get_running_loop(), asyncio.Queue(self.queue_size), scope or Scope.everything()
        )
        with self._lock:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def publish(self, message: Message, scope: Scope | None = None) -> None:
        """Thread-safe: hands the message to every subscriber's own loop, each seeing only the
        spans of its scope; with ``scope``, only to the subscribers of that scope."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if scope is not None and subscriber.scope != scope:
                continue
            seen = visible(message, subscriber.scope)
            if seen is None:
                continue
            with contextlib.suppress(RuntimeError):  # its loop already closed
                subscriber.loop.call_soon_threadsafe(subscriber.offer, seen)

    def observe(self, batch: Batch) -> None:
        """A recorder batch observer (runs on the flush worker)."""
        if not self._subscribers or not batch.spans:
            return
        spans = [span_message(span) for span in batch.spans[-SPANS_PER_MESSAGE:]]
        self.publish(
            {"type": "spans", "spans": spans, "dropped": max(0, len(batch.spans) - len(spans))}
        )


class StorePoller:
    """For servers that only read the store: publish spans stored since the last poll."""

    def __init__(self, hub: LiveHub, stores: StoreHandle, interval: float = 1.0) -> None:
        self._hub = hub
        self._stores = stores
        self._interval = interval
        self._since = time.time()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._hub.subscribers:
                continue
            try:
                await asyncio.to_thread(self.poll_once)
            except (StoreUnavailable, *DATABASE_ERRORS):
                continue  # an outage pauses the feed; it resumes from the last span sent
            except Exception:
                # The poller feeds every subscriber: a bug skips one poll, not the feed.
                logger.exception("Watchkeeper could not poll its store for the live feed")

    def poll_once(self) -> None:
        now = datetime.now(UTC)
        since = datetime.fromtimestamp(self._since, UTC)
        # Spans are stored when they end, so look back a little before the last start seen.
        window = TimeRange(min(since, now - timedelta(seconds=1)) - timedelta(seconds=30), now)
        page = self._stores.current().spans(window, Scope.everything(), limit=SPANS_PER_MESSAGE)
        fresh = [span for span in page.items if span.start.timestamp() > self._since]
        if fresh:
            self._since = max(span.start.timestamp() for span in fresh)
            self._hub.publish(
                {"type": "spans", "spans": [stored_span_message(span) for span in reversed(fresh)]}
            )


async def serve_subscriber(websocket: WebSocket, hub: LiveHub, scope: Scope) -> None:
    subscriber = hub.subscribe(scope)
    try:
        while True:
            receive = asyncio.ensure_future(subscriber.queue.get())
            overflow = asyncio.ensure_future(subscriber.overflowed.wait())
            done, pending = await asyncio.wait(
                {receive, overflow}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if overflow in done:
                break
            try:
                # A client that stops reading fills the socket's buffers and blocks the send.
                await asyncio.wait_for(websocket.send_json(receive.result()), SEND_TIMEOUT)
            except TimeoutError:
                break
    except WebSocketDisconnect:
        return  # the client left: nothing to report
    finally:
        hub.unsubscribe(subscriber)
    hub.disconnected_slow += 1
    # The close frame may not get through a full socket either; don't wait on it for long.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            websocket.close(TRY_AGAIN_LATER, "too slow to keep up with the live feed"),
            SEND_TIMEOUT,
        )
