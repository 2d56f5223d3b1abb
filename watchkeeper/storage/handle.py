"""The one store of a process, opened in the background so an unreachable store never stops the app.

Opening (connecting, then migrating) runs on its own daemon thread and is retried with backoff
until it succeeds. Until then every use raises :class:`StoreUnavailable` with the reason: the
flush worker keeps its batches and retries, the API answers 503, and health says why. The
recorder and the API share this one handle, so one process has one connection pool.

No call may wedge the writer. Every opening attempt and every write runs on a thread of its own
under a deadline (twice ``WATCHKEEPER_STORE_TIMEOUT``); one that outlives it — a database that
still accepts TCP but never answers, a socket gone silent — is abandoned: counted in
:attr:`StoreHandle.stuck_calls`, reported as :class:`StoreStuck`, its connections forgotten and
a fresh store opened. The driver's own timeouts (see ``storage.engine``) usually fire first; this
is the guarantee when they cannot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from watchkeeper.config import Settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import StoreStuck, StoreUnavailable
from watchkeeper.model.store import Store
from watchkeeper.storage.factory import open_store

logger = logging.getLogger("watchkeeper")

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
FIRST_ATTEMPT_WAIT_SECONDS = 30.0
"""How long a write waits for the first opening attempt to end, so the first flush after
start-up does not count a failure just because the store was still being opened."""

PING_WAIT_SECONDS = 3.0
StoreOpener = Callable[[Settings], Store]
T = TypeVar("T")


class StoreHandle:
    def __init__(
        self, settings: Settings, store: Store | None = None, opener: StoreOpener = open_store
    ) -> None:
        self._settings = settings
        self._opener = opener
        self._store = store
        self._owned = store is None
        self._lock = threading.Lock()
        self._attempted = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._deadline = 2 * settings.store_timeout
        self.last_error: str | None = None
        self.stuck_calls = 0
        self.last_stuck_at: float | None = None
        if store is not None:
            self._attempted.set()

    @property
    def is_open(self) -> bool:
        return self._store is not None

    def open_in_background(self) -> None:
        """Start opening the store, unless it is open or being opened. Returns at once."""
        with self._lock:
            if self._store is not None or self._thread is not None:
                return
            self._closing.clear()
            self._thread = threading.Thread(
                target=self._open_until_done, name="watchkeeper-store-open", daemon=True
            )
            self._thread.start()

    def wait_first_attempt(self, timeout: float) -> None:
        """Wait until the first opening attempt has ended, whatever its outcome."""
        self._attempted.wait(timeout)

    def wait_open(self, timeout: float) -> bool:
        """Wait until the store is open; ``False`` if it is not within ``timeout`` seconds."""
        self._attempted.wait(timeout)
        thread = self._thread
        if self._store is None and thread is not None:
            thread.join(timeout)
        return self._store is not None

    def current(self) -> Store:
        """The open store, or :class:`StoreUnavailable` saying why there is none yet."""
        store = self._store
        if store is None:
            reason = self.last_error or "it is still being opened"
            raise StoreUnavailable(f"Watchkeeper's store is not open: {reason}")
        return store

    # -- the recorder's sink ----------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        self._await_first_attempt(FIRST_ATTEMPT_WAIT_SECONDS)
        store = self.current()
        try:
            _call_with_deadline(lambda: store.write(batch), self._deadline, "writing a batch")
        except StoreStuck as stuck:
            self._abandon(store, str(stuck))
            raise

    def ping(self) -> None:
        self._await_first_attempt(PING_WAIT_SECONDS)
        self.current().ping()

    def _await_first_attempt(self, timeout: float) -> None:
        if self._store is None and self._thread is None:
            self.open_in_background()
        # Callers on Watchkeeper's own threads only (the flush worker, the store probe's), so
        # a process starting up does not report a store that is merely still being opened.
        if self._store is None and self._thread is not None:
            self.wait_first_attempt(timeout)

    def after_fork_in_child(self) -> None:
        # Only stores holding connections have the hook; a child must not share them.
        forget_connections = getattr(self._store, "after_fork_in_child", None)
        if callable(forget_connections):
            forget_connections()

    def close(self) -> None:
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
        with self._lock:
            store, self._store = self._store, None
        if store is not None and self._owned:
            store.close()

    def _open_until_done(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._closing.is_set():
            try:
                store = _call_with_deadline(
                    lambda: self._opener(self._settings), self._deadline, "opening the store"
                )
            except StoreStuck as error:
                self._stuck()
                self._failed(str(error))
            except StoreUnavailable as error:
                self._failed(str(error))
            except Exception as error:  # contained: a bug here must not kill the retries
                self._failed(f"{type(error).__name__}: {error}")
            else:
                with self._lock:
                    self._store = store
                    self._thread = None
                if self.last_error is not None:
                    logger.warning("Watchkeeper reached its store; recording is stored again.")
                self.last_error = None
                self._attempted.set()
                return
            self._attempted.set()
            self._closing.wait(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _failed(self, reason: str) -> None:
        if reason != self.last_error:
            logger.warning(
                "Watchkeeper cannot open its store (%s). The app keeps serving; recording is "
                "buffered and the store is retried in the background.",
                reason,
            )
        self.last_error = reason

    def _stuck(self) -> None:
        self.stuck_calls += 1
        self.last_stuck_at = time.time()

    def _abandon(self, store: Store, reason: str) -> None:
        """Give up a store whose call is stuck, and open a fresh one in the background."""
        with self._lock:
            if self._store is not store:
                return  # another caller abandoned it already
            self._store = None
            self._stuck()
        logger.warning("Watchkeeper abandoned its store's connections: %s", reason)
        self.last_error = reason
        forget_connections = getattr(store, "forget_connections", None)
        if callable(forget_connections):
            forget_connections()
        self.open_in_background()


def _call_with_deadline(call: Callable[[], T], seconds: float, action: str) -> T:
    """``call()`` on a daemon thread of its own; :class:`StoreStuck` if it takes over ``seconds``.

    A thread, not an executor, per call: one stuck in a dead socket stays blocked, and must
    neither hold up later calls nor keep the process from exiting.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed to the caller, whatever it is
            failure.append(error)
        finally:
            finished.set()

    threading.Thread(target=run, name="watchkeeper-store-call", daemon=True).start()
    if not finished.wait(seconds):
        raise StoreStuck(f"{action} did not finish within {seconds:g} s")
    if failure:
        raise failure[0]
    return outcome[0]
