"""Batches built while the store could not take them, waiting in order to be written.

The flush worker keeps aggregating while the store is down (live windows, health and metrics
stay current); only writing waits, here. The queue is bounded by events, not batches, so the
memory it may hold is known: when a new batch would overflow it, the oldest batches leave first,
handed to the caller, which spools them to disk (:mod:`watchkeeper.recording.spool`) or, with
no spool, drops and counts them, because the newest events matter most once the store is back.
One writer thread uses it; other threads only read :attr:`events`.
"""

from __future__ import annotations

from collections import deque

from watchkeeper.model.batch import Batch
from watchkeeper.recording.stats import app_events


class WaitingBatches:
    """A FIFO of batches holding at most ``capacity`` events (a lone larger batch is kept).

    Only the app's events count: Watchkeeper's few loss figures must never push them out.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.events = 0
        self._batches: deque[Batch] = deque()

    def __bool__(self) -> bool:
        return bool(self._batches)

    def add(self, batch: Batch) -> list[Batch]:
        """Queue ``batch`` behind the others; return the older ones it pushed out, oldest first."""
        self._batches.append(batch)
        self.events += app_events(batch)
        overflow = []
        while self.events > self.capacity and len(self._batches) > 1:
            oldest = self._batches.popleft()
            self.events -= app_events(oldest)
            overflow.append(oldest)
        return overflow

    def first(self) -> Batch:
        """The oldest batch, the next to write; the queue must not be empty."""
        return self._batches[0]

    def remove_first(self) -> None:
        """Forget the oldest batch once it is written (or dealt with)."""
        self.events -= app_events(self._batches.popleft())

    def take_all(self) -> list[Batch]:
        """Empty the queue; return what it held, oldest first."""
        batches = list(self._batches)
        self.events = 0
        self._batches.clear()
        return batches
