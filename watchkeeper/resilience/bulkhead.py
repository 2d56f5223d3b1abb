"""The concurrency limit (bulkhead): at most so many calls to one integration in flight in this
process, so a slow service cannot tie up every thread or connection of the app.

One bulkhead serves threads and event loops alike: a freed slot is handed straight to the
longest waiter, whichever kind it is, so neither starves the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class _ThreadWaiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()

    def hand_over(self) -> bool:
        self.event.set()
        return True


class _TaskWaiter:
    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def hand_over(self) -> bool:
        if self.future.done():
            return False  # it gave up waiting (timed out, cancelled)
        try:
            self.loop.call_soon_threadsafe(_settle, self.future)
        except RuntimeError:
            return False  # its loop is closed
        return True


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Bulkhead:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()
        self._waiters: deque[_ThreadWaiter | _TaskWaiter] = deque()

    def try_enter(self) -> bool:
        with self._lock:
            if self.in_flight < self.limit and not self._waiters:
                self.in_flight += 1
                return True
            return False

    def enter(self, wait: float) -> bool:
        """Take a slot, waiting at most ``wait`` seconds; whether one was taken."""
        if self.try_enter():
            return True
        if wait <= 0:
            return False
        waiter = _ThreadWaiter()
        with self._lock:
            if self.in_flight < self.limit:
                self.in_flight += 1
                return True
            self._waiters.append(waiter)
        if waiter.event.wait(wait):
            return True
        with self._lock:
            if waiter.event.is_set():
                return True  # handed a slot just as the wait ran out
            self._waiters.remove(waiter)
        return False

    async def enter_async(self, wait: float) -> bool:
        if self.try_enter():
            return True
        if wait <= 0:
            return False
        waiter = _TaskWaiter(asyncio.get_running_loop())
        with self._lock:
            if self.in_flight < self.limit:
                self.in_flight += 1
                return True
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), wait)
        except TimeoutError:
            self._withdraw(waiter)
            return False
        except asyncio.CancelledError:
            self._withdraw(waiter)
            raise
        return True

    def _withdraw(self, waiter: _TaskWaiter) -> None:
        with self._lock:
            handed = waiter not in self._waiters
            if not handed:
                self._waiters.remove(waiter)
            waiter.future.cancel()
        if handed:
            # The slot arrived as the wait ended: it goes to the next in line.
            self.leave()

    def leave(self) -> None:
        """Free a slot: handed to the next waiter, if any."""
        with self._lock:
            while self._waiters:
                if self._waiters.popleft().hand_over():
                    return  # the slot stays taken, by the waiter now
            self.in_flight -= 1
