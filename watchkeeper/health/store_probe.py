"""The built-in probe: can the recorder's store be reached?"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from watchkeeper.health.probes import ProbeOutcome, ProbeRegistry
from watchkeeper.health.status import ComponentType, HealthStatus
from watchkeeper.recording.recorder import Recorder

STORE_PROBE = "store"
RECENTLY_STUCK_SECONDS = 900.0


class StoreProbe:
    """Runs ``sink.ping()`` on a daemon thread so a blocked driver never blocks the event loop.

    A daemon thread per ping, not an executor: a ping stuck in a dead TCP connection must not
    keep the process from exiting, and pool threads are joined at exit. While a ping is stuck
    no new one is started, so a long outage costs one thread, not one per interval.
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._busy = threading.Lock()

    async def __call__(self) -> ProbeOutcome:
        shipping = self._recorder.shipping
        if shipping is not None and not shipping.writing_itself:
            # The collector writes: it probes the store; this process only reaches it.
            if shipping.connected:
                return ProbeOutcome(HealthStatus.PASS, "events go to the collector")
            return ProbeOutcome(
                HealthStatus.WARN, "the collector is not answering: events wait in the buffer"
            )
        sink = self._recorder.sink
        if sink is None:
            return ProbeOutcome(HealthStatus.WARN, "the store is not open (recorder not started)")
        if not self._busy.acquire(blocking=False):
            return ProbeOutcome(HealthStatus.FAIL, "the previous ping has not returned yet")
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[float] = loop.create_future()

        def ping() -> None:
            started = time.monotonic()
            try:
                sink.ping()
            except Exception as error:
                _deliver(loop, answered, None, error)
            else:
                _deliver(loop, answered, time.monotonic() - started, None)
            finally:
                self._busy.release()

        threading.Thread(target=ping, name="watchkeeper-store-ping", daemon=True).start()
        seconds = await answered
        # Calls abandoned lately because the store stopped answering (see storage.handle):
        # recovered from, but an operator should know the database or its network misbehaves.
        stuck_at = getattr(sink, "last_stuck_at", None)
        ago = time.time() - stuck_at if isinstance(stuck_at, float) else None
        recent = ago is not None and ago < RECENTLY_STUCK_SECONDS
        return ProbeOutcome(
            HealthStatus.WARN if recent else HealthStatus.PASS,
            f"a store call did not answer in time and was abandoned {ago:.0f} s ago"
            if recent and ago is not None
            else None,
            observed_value=round(seconds * 1000, 2),
            observed_unit="ms",
        )


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[float],
    seconds: float | None,
    error: Exception | None,
) -> None:
    # A ping that outlives the server finds its loop closed; nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, seconds, error)


def _settle(future: asyncio.Future[float], seconds: float | None, error: Exception | None) -> None:
    # The probe may have timed out and been cancelled while the ping was still running.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    elif seconds is not None:
        future.set_result(seconds)


def register_store_probe(
    probes: ProbeRegistry, recorder: Recorder, interval: float = 30.0, timeout: float = 5.0
) -> None:
    probes.register(
        STORE_PROBE,
        StoreProbe(recorder),
        interval=interval,
        timeout=timeout,
        required=True,
        component_type=ComponentType.DATASTORE,
        # Recording buffers and retries while the store is away; the app itself is fine,
        # unless its operator chose otherwise.
        advisory=not recorder.settings.readiness_includes_monitoring,
    )
