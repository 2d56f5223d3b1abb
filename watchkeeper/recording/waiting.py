"""Batches built while the store could not take them, waiting in order to be written.

The flush worker keeps aggregating while the store is down (live windows, health and metrics
stay current); only writing waits, here. The queue is bounded by events, not batches, so the
memory it may hold is known: when a new batch would overflow it, the oldest batches go first
(their loss is what the caller counts), because the newest events matter most once the store
is back. One writer thread uses it; other threads only read :attr:`events`.
"""

from __future__ import annotations

from collections import deque

from watchkeeper.model.batch import Batch


class WaitingBatches:
    """A FIFO of batches holding at most ``capacity`` events (a lone larger batch is kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.events = 0
        self._batches: deque[Batch] = deque()

    def __bool__(self) -> bool:
        return bool(self._batches)

    def add(self, batch: Batch) -> int:
        """Queue ``batch`` behind the others; return how many older events were dropped for it."""
        self._batches.append(batch)
        self.events += len(batch)
        dropped = 0
        while self.events > self.capacity and len(self._batches) > 1:
            oldest = len(self._batches.popleft())
            self.events -= oldest
            dropped += oldest
        return dropped

    def first(self) -> Batch:
        """The oldest batch, the next to write; the queue must not be empty."""
        return self._batches[0]

    def remove_first(self) -> None:
        """Forget the oldest batch once it is written (or dealt with)."""
        self.events -= len(self._batches.popleft())

    def clear(self) -> int:
        """Forget everything; return how many events that was."""
        events, self.events = self.events, 0
        self._batches.clear()
        return events
