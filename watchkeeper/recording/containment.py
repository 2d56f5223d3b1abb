"""Watchkeeper's own failures are contained: counted, logged at a bounded rate, never raised.

Under Watchkeeper's test suite (``raise_internal_errors``) the first error is kept and re-raised
to the caller of ``flush``/``stop`` (or raised at once on the caller's thread), so bugs are not
hidden behind the containment meant for production.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("watchkeeper")

LOG_INTERVAL_SECONDS = 60.0


class InternalError(RuntimeError):
    """Raised only in strict mode, wrapping the error Watchkeeper would otherwise have contained."""


class Containment:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.count = 0
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._first_error: tuple[str, BaseException] | None = None

    def report(self, where: str, error: BaseException, *, on_caller_thread: bool = False) -> None:
        with self._lock:
            self.count += 1
            now = time.monotonic()
            due = now - self._last_logged.get(where, -LOG_INTERVAL_SECONDS) >= LOG_INTERVAL_SECONDS
            if due:
                self._last_logged[where] = now
            if self.strict and self._first_error is None:
                self._first_error = (where, error)
        if due:
            logger.warning(
                "Watchkeeper contained an internal error in %s (%s: %s); the app is unaffected. "
                "Further errors here are counted and logged at most once a minute.",
                where,
                type(error).__name__,
                error,
                exc_info=error,
            )
        if self.strict and on_caller_thread:
            raise InternalError(f"internal error in {where}: {error!r}") from error

    def raise_pending(self) -> None:
        """In strict mode, surface an error the worker contained since the last call."""
        with self._lock:
            first, self._first_error = self._first_error, None
        if first is not None:
            where, error = first
            raise InternalError(f"internal error in {where}: {error!r}") from error
