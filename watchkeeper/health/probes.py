"""Active probes: user-supplied async checks run in the background on the app's event loop.

Probes run as tasks on the application's own loop (started by the health router's lifespan)
rather than on a private thread and loop, because a probe usually reuses the app's async clients
(``httpx.AsyncClient``, database pools), and those only work on the loop that created them. The
endpoints never await a probe: they read the latest result, so a hung dependency cannot hang
``/health``. Each probe is awaited with :func:`asyncio.wait`, not ``wait_for``, so a probe that
ignores cancellation is abandoned rather than waited on; it is not started again until it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from watchkeeper.health.status import Check, ComponentType, HealthStatus
from watchkeeper.redaction import scrub_urls


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a probe may return when ``True``/``None`` (pass) and ``False`` (fail) say too little."""

    status: HealthStatus
    output: str | None = None
    observed_value: float | int | str | None = None
    observed_unit: str | None = None


ProbeCheck = Callable[[], Awaitable[ProbeOutcome | bool | None]]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: ProbeOutcome
    finished_at: float


@dataclass(slots=True)
class Probe:
    name: str
    check: ProbeCheck
    interval: float
    timeout: float
    required: bool
    component_type: ComponentType
    advisory: bool = False
    """Its failure is shown as a warning: the trouble is Watchkeeper's own, not the app's, and
    must not take the app out of a load balancer."""
    latest: ProbeResult | None = None
    in_flight: asyncio.Future[ProbeOutcome | bool | None] | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.name}:probe"

    def check_now(self) -> Check:
        """The latest result as a health check, with its age; never waits for the probe."""
        latest = self.latest
        if latest is None:
            return Check(
                self.name, self.component_type, HealthStatus.WARN, output="not checked yet"
            )
        age = max(0.0, time.time() - latest.finished_at)
        outcome = latest.outcome
        status = outcome.status
        freshness = f"checked {age:.0f}s ago"
        # A result much older than the schedule means the runner stopped; say so rather than
        # keep vouching for a dependency nobody is checking.
        if age > _STALE_AFTER_INTERVALS * (self.interval + self.timeout):
            status = HealthStatus.worst((status, HealthStatus.WARN))
            freshness = f"stale: {freshness}"
        if self.advisory and status is HealthStatus.FAIL:
            status = HealthStatus.WARN
        return Check(
            component_id=self.name,
            component_type=self.component_type,
            status=status,
            observed_value=outcome.observed_value,
            observed_unit=outcome.observed_unit,
            time=datetime.fromtimestamp(latest.finished_at, UTC),
            output=f"{outcome.output}; {freshness}" if outcome.output else freshness,
        )


_STALE_AFTER_INTERVALS = 3


class ProbeRegistry:
    """The probes of one application, and the tasks that run them."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(
        self,
        name: str,
        check: ProbeCheck,
        interval: float = 30.0,
        timeout: float = 5.0,
        required: bool = False,
        component_type: ComponentType = ComponentType.COMPONENT,
        advisory: bool = False,
    ) -> Probe:
        """Add a probe; ``required`` ones must pass (or warn) for the app to be ready."""
        if not name or ":" in name:
            raise ValueError(f"a probe name must be non-empty and contain no ':', got {name!r}")
        if name in self._probes:
            raise ValueError(f"a probe named {name!r} is already registered")
        if interval <= 0 or timeout <= 0:
            raise ValueError(
                f"probe {name!r}: interval and timeout must be positive, "
                f"got interval={interval}, timeout={timeout}"
            )
        probe = Probe(name, check, interval, timeout, required, component_type, advisory)
        self._probes[name] = probe
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._launch, probe)
        return probe

    def __contains__(self, name: object) -> bool:
        return name in self._probes

    @property
    def probes(self) -> list[Probe]:
        return list(self._probes.values())

    def start(self) -> None:
        """Start every probe on the running event loop (call from the app's lifespan)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for probe in self._probes.values():
            self._launch(probe)

    async def stop(self) -> None:
        self._loop = None
        runners = [probe.runner for probe in self._probes.values() if probe.runner is not None]
        for probe in self._probes.values():
            probe.runner = None
            if probe.in_flight is not None:
                probe.in_flight.cancel()
        for runner in runners:
            runner.cancel()
        # Only the runners are awaited: an in-flight check may ignore cancellation.
        await asyncio.gather(*runners, return_exceptions=True)

    async def _run_once(self, probe: Probe) -> None:
        """Run one probe within its timeout and keep the result as its latest."""
        previous = probe.in_flight
        if previous is not None and not previous.done():
            outcome = ProbeOutcome(
                HealthStatus.FAIL,
                f"timed out after {_seconds(probe.timeout)}; the last attempt is still running",
            )
        else:
            attempt = asyncio.ensure_future(probe.check())
            attempt.add_done_callback(_retrieve)
            done, _ = await asyncio.wait({attempt}, timeout=probe.timeout)
            if done:
                probe.in_flight = None
                outcome = _interpret(attempt)
            else:
                attempt.cancel()
                probe.in_flight = attempt
                outcome = ProbeOutcome(
                    HealthStatus.FAIL, f"timed out after {_seconds(probe.timeout)}"
                )
        probe.latest = ProbeResult(outcome, time.time())

    def _launch(self, probe: Probe) -> None:
        if self._loop is None or probe.runner is not None:
            return
        probe.runner = self._loop.create_task(self._run_forever(probe), name=f"probe:{probe.name}")

    async def _run_forever(self, probe: Probe) -> None:
        while True:
            await self._run_once(probe)
            await asyncio.sleep(probe.interval)


def _interpret(attempt: asyncio.Future[ProbeOutcome | bool | None]) -> ProbeOutcome:
    if attempt.cancelled():
        return ProbeOutcome(HealthStatus.FAIL, "the check was cancelled")
    error = attempt.exception()
    if error is not None:
        # Driver errors often quote the connection URL, password included.
        kind = type(error).__name__
        detail = scrub_urls(str(error))
        return ProbeOutcome(HealthStatus.FAIL, f"{kind}: {detail}" if detail else kind)
    value = attempt.result()
    if isinstance(value, ProbeOutcome):
        return ProbeOutcome(
            value.status,
            scrub_urls(value.output) if value.output else None,
            value.observed_value,
            value.observed_unit,
        )
    if value is False:
        return ProbeOutcome(HealthStatus.FAIL, "the check reported failure")
    return ProbeOutcome(HealthStatus.PASS)


def _retrieve(attempt: asyncio.Future[ProbeOutcome | bool | None]) -> None:
    # An abandoned attempt may fail long after its timeout; fetching the error here keeps
    # asyncio from logging "exception was never retrieved" for a result already reported.
    if not attempt.cancelled():
        attempt.exception()


def _seconds(value: float) -> str:
    return f"{value:g}s"
