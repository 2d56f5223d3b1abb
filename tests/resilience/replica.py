"""One replica of an app, as its own process, sharing resilience's state through Redis.

python -m tests.resilience.replica REDIS_URL SERVICE_URL NAME MODE COUNT

``open``: call until the breaker opens (it reports how many calls that took); ``probe``: one
call, and how it ended; ``quota``: COUNT calls, and how many the shared rate limit let through.
It prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import httpx

from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.calls import resilient
from watchkeeper.resilience.errors import CircuitOpen, RateLimited
from watchkeeper.resilience.events import Events
from watchkeeper.resilience.failover import FailoverState
from watchkeeper.resilience.policy import BreakerPolicy, Policy, RateLimitPolicy, RetryPolicy
from watchkeeper.resilience.redis_state import RedisState
from watchkeeper.resilience.registry import Resilience
from watchkeeper.testing.memory import MemorySink

POLICY = Policy(
    retry=RetryPolicy(attempts=1),
    breaker=BreakerPolicy(consecutive_failures=3, cool_down=600),
    rate_limit=RateLimitPolicy(requests_per_minute=10),
)


def fetch(url: str) -> int:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.status_code


def main() -> None:
    redis_url, service_url, name, mode, count = sys.argv[1:6]
    recorder = Recorder(load_settings(), sink=MemorySink())
    state = FailoverState(RedisState(redis_url, timeout=2.0))
    resilience = Resilience(state, Events(recorder))
    guarded = resilient(name, policy=POLICY, resilience=resilience, recorder=recorder)
    outcomes: dict[str, int] = {"ok": 0, "error": 0, "circuit_open": 0, "rate_limited": 0}
    calls = 0
    for _ in range(int(count)):
        calls += 1
        try:
            guarded.call(fetch, service_url)
            outcomes["ok"] += 1
        except CircuitOpen:
            outcomes["circuit_open"] += 1
            if mode == "open":
                break
        except RateLimited:
            outcomes["rate_limited"] += 1
        except httpx.HTTPError:
            outcomes["error"] += 1
    print(json.dumps({"calls": calls, **outcomes, "shared": state.down_since is None}))
    state.close()


if __name__ == "__main__":
    main()
