"""What guarding a call costs: a policy-wrapped call beside the bare call and beside tenacity
with a plain circuit breaker, in memory and with the breaker and limits in Redis.

The guarded function does nothing (returns a constant), so each figure is the wrapping's own
cost per call, in µs, with nothing of a real service's latency to hide it. Each variant is timed
in blocks of 2,000 calls (500 for Redis), interleaved over the rounds, and the median block is
reported; the bare call's cost is subtracted, so a row is the *added* cost.

- ``resilient``: ``resilient("svc").call(fn)`` with retries, a breaker and its integration span
  recorded (the recorder's buffer drained between blocks, untimed, as its worker would);
- ``tenacity + breaker``: ``tenacity.Retrying`` (three attempts, random exponential wait) around
  a minimal consecutive-failures breaker: what an app would write by hand, and records nothing;
- ``resilient, Redis``: the same policy with ``WATCHKEEPER_REDIS_URL``'s shared state
  (``redis://127.0.0.1:6379/0``): one round trip to admit, one to record; skipped without Redis.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from tenacity import Retrying, stop_after_attempt, wait_random_exponential

from bench.common import Result
from watchkeeper.config import load_settings
from watchkeeper.model.batch import Batch
from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.calls import resilient
from watchkeeper.resilience.events import Events
from watchkeeper.resilience.failover import FailoverState
from watchkeeper.resilience.policy import BreakerPolicy, Policy, RetryPolicy
from watchkeeper.resilience.registry import Resilience

REDIS_URL = "redis://127.0.0.1:6379/0"
POLICY = Policy(retry=RetryPolicy(attempts=3), breaker=BreakerPolicy(consecutive_failures=5))


class _DiscardSink:
    def write(self, batch: Batch) -> None:
        pass

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


class PlainBreaker:
    """The breaker an app would write: open after five failures in a row, for 30 seconds."""

    def __init__(self) -> None:
        self.failures = 0
        self.opened_at = 0.0

    def call(self, function: Callable[[], object]) -> object:
        if self.failures >= 5 and time.monotonic() - self.opened_at < 30:
            raise RuntimeError("circuit open")
        try:
            result = function()
        except Exception:
            self.failures += 1
            if self.failures >= 5:
                self.opened_at = time.monotonic()
            raise
        self.failures = 0
        return result


def _answer() -> int:
    return 42


def _redis_state() -> FailoverState | None:
    try:
        from watchkeeper.resilience.redis_state import RedisState  # noqa: PLC0415 - the redis extra

        shared = RedisState(REDIS_URL, timeout=1.0)
        shared.ping()
    except Exception:
        return None
    return FailoverState(shared)


def run(quick: bool) -> list[Result]:
    rounds = 10 if quick else 30
    recorder = Recorder(load_settings(buffer_size=10_000_000), sink=_DiscardSink())
    memory = resilient(
        "svc", policy=POLICY, resilience=Resilience(events=Events(recorder)), recorder=recorder
    )
    breaker = PlainBreaker()
    retrying = Retrying(
        stop=stop_after_attempt(3),
        wait=wait_random_exponential(multiplier=0.5, max=30),
        reraise=True,
    )

    def bare() -> None:
        _answer()

    def ours() -> None:
        memory.call(_answer)

    def theirs() -> None:
        retrying(breaker.call, _answer)

    variants: dict[str, tuple[Callable[[], object], int]] = {
        "bare": (bare, 2_000),
        "ours": (ours, 2_000),
        "theirs": (theirs, 2_000),
    }
    shared = _redis_state()
    if shared is not None:
        in_redis = resilient(
            f"bench-{time.time_ns()}",
            policy=POLICY,
            resilience=Resilience(shared, Events(recorder)),
            recorder=recorder,
        )
        variants["redis"] = (lambda: in_redis.call(_answer), 500)

    def timed(operation: Callable[[], object], calls: int) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            operation()
        elapsed = (time.perf_counter() - started) / calls
        recorder._buffer.clear()  # the worker's drain, untimed
        return elapsed

    for operation, calls in variants.values():  # warm up
        timed(operation, calls)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (operation, calls) in variants.items():
            samples[name].append(timed(operation, calls))
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    added = {name: median[name] - median["bare"] for name in median}
    results = [
        Result(
            "resilience: added cost per call, in memory",
            "resilient().call() (span recorded)",
            added["ours"],
            "tenacity Retrying + plain breaker",
            added["theirs"],
            "µs",
            "≤ 1.0×",
            added["ours"] <= added["theirs"],
        ),
        Result(
            "resilience: bare call",
            "fn()",
            median["bare"],
            "tenacity Retrying + plain breaker (whole)",
            median["theirs"],
            "µs",
            "(information)",
            True,
        ),
    ]
    if shared is not None:
        results.append(
            Result(
                "resilience: added cost per call, Redis",
                "resilient().call(), breaker in Redis",
                added["redis"],
                "tenacity Retrying + plain breaker",
                added["theirs"],
                "µs",
                "≤ 500 µs",
                added["redis"] <= 500,
            )
        )
        shared.close()
    return results


if __name__ == "__main__":
    for row in run(quick=False):
        print(row)
