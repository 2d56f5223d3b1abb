"""The circuit breaker's rules: closed → open → half-open → closed, as pure functions.

No library fits: pybreaker and purgatory share state in Redis but open on consecutive failures
only and (pybreaker) block an event loop; aiobreaker is async-only and local. This breaker opens
on a failure rate over a rolling window with a minimum of calls, or on consecutive failures,
lets a bounded number of trial calls through when half-open, and keeps its state in a
:class:`~watchkeeper.resilience.state.StateBackend`: these functions for the in-memory one, and
their twin in Lua (:mod:`watchkeeper.resilience.redis_state`) for Redis, run atomically there so
replicas share one breaker. The same scenarios are tested against both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.policy import BreakerPolicy

BUCKETS = 10
"""The rolling window is kept as this many buckets: it forgets a tenth at a time."""


@dataclass(frozen=True, slots=True)
class Transition:
    integration: str
    before: CircuitState
    after: CircuitState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    state: CircuitState
    trial: bool = False
    retry_in: float = 0.0
    """When refused: seconds until the breaker lets a trial call through."""
    transition: Transition | None = None


ADMITTED = Admission(True, CircuitState.CLOSED)


@dataclass(slots=True)
class BreakerRecord:
    """One breaker's state; ``buckets`` maps a bucket number to [calls, failures]."""

    state: CircuitState = CircuitState.CLOSED
    changed_at: float = 0.0
    consecutive: int = 0
    trials: int = 0
    trial_successes: int = 0
    buckets: dict[int, list[int]] = field(default_factory=dict)


def bucket_width(rules: BreakerPolicy) -> float:
    return rules.window / BUCKETS


def admit(name: str, record: BreakerRecord, rules: BreakerPolicy, now: float) -> Admission:
    """Whether a call may go to the service now; moves open → half-open after the cool-down."""
    state = record.state
    if state is CircuitState.CLOSED:
        return ADMITTED
    waited = now - record.changed_at
    if state is CircuitState.OPEN:
        if waited < rules.cool_down:
            return Admission(False, state, retry_in=rules.cool_down - waited)
        record.state = CircuitState.HALF_OPEN
        record.changed_at = now
        record.trials = 1
        record.trial_successes = 0
        transition = Transition(
            name, CircuitState.OPEN, CircuitState.HALF_OPEN, now, "cool-down over"
        )
        return Admission(True, CircuitState.HALF_OPEN, trial=True, transition=transition)
    # Half-open: a few trials; trials never reported (a process that died mid-call) are
    # written off after another cool-down.
    if record.trials < rules.half_open_calls or waited >= rules.cool_down:
        if waited >= rules.cool_down:
            record.changed_at = now
            record.trials = 0
            record.trial_successes = 0
        record.trials += 1
        return Admission(True, state, trial=True)
    return Admission(False, state, retry_in=max(0.0, rules.cool_down - waited))


def record_outcome(
    name: str, record: BreakerRecord, rules: BreakerPolicy, now: float, ok: bool, trial: bool
) -> Transition | None:
    """Count one call's outcome; the transition it caused, if any."""
    if record.state is CircuitState.HALF_OPEN:
        if not trial:
            return None  # admitted before the breaker opened: says nothing about now
        if not ok:
            return _open(name, record, now, "a trial call failed")
        record.trial_successes += 1
        if record.trial_successes < rules.half_open_calls:
            return None
        record.state = CircuitState.CLOSED
        record.changed_at = now
        record.consecutive = 0
        record.buckets.clear()
        return Transition(
            name, CircuitState.HALF_OPEN, CircuitState.CLOSED, now, "trial calls succeeded"
        )
    if record.state is CircuitState.OPEN:
        return None
    bucket = int(now // bucket_width(rules))
    counts = record.buckets.get(bucket)
    if counts is None:
        oldest = bucket - BUCKETS + 1
        for stale in [number for number in record.buckets if number < oldest]:
            del record.buckets[stale]
        counts = record.buckets[bucket] = [0, 0]
    counts[0] += 1
    if ok:
        record.consecutive = 0
        return None
    counts[1] += 1
    record.consecutive += 1
    if rules.consecutive_failures is not None and record.consecutive >= rules.consecutive_failures:
        return _open(name, record, now, f"{record.consecutive} failures in a row")
    calls = sum(counts[0] for counts in record.buckets.values())
    failures = sum(counts[1] for counts in record.buckets.values())
    if calls >= rules.minimum_calls and failures / calls >= rules.failure_rate:
        return _open(name, record, now, f"{failures} of {calls} calls failed in {rules.window:g} s")
    return None


def _open(name: str, record: BreakerRecord, now: float, reason: str) -> Transition:
    before = record.state
    record.state = CircuitState.OPEN
    record.changed_at = now
    record.trials = 0
    record.trial_successes = 0
    record.buckets.clear()
    return Transition(name, before, CircuitState.OPEN, now, reason)


def force_open(name: str, record: BreakerRecord, at: float, reason: str) -> Transition | None:
    """Open it as of ``at`` (resync: another copy of the state opened it then)."""
    if record.state is CircuitState.OPEN and record.changed_at >= at:
        return None
    return _open(name, record, at, reason)
