"""Resilience's state in the real Redis: replicas (real processes) share one breaker and one
quota, and Redis going away mid-test fails no call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.resilience.flaky import FlakyService
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.calls import resilient
from watchkeeper.resilience.errors import CircuitOpen
from watchkeeper.resilience.failover import FailoverState
from watchkeeper.resilience.policy import BreakerPolicy, Policy, RateLimitPolicy, RetryPolicy
from watchkeeper.resilience.registry import Resilience

REDIS_URL_VARIABLE = "WATCHKEEPER_TEST_REDIS_URL"
ROOT = Path(__file__).resolve().parents[2]

redis_state = pytest.importorskip("watchkeeper.resilience.redis_state")


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        pytest.skip(f"set {REDIS_URL_VARIABLE} to run the Redis tests")
    return url


@pytest.fixture
def name() -> str:
    """An integration name no other test (or earlier run) has used in the shared Redis."""
    return f"svc-{uuid.uuid4().hex[:12]}"


def replica(
    redis_url: str, service_url: str, name: str, mode: str, count: int
) -> subprocess.Popen[str]:
    arguments = [redis_url, service_url, name, mode, str(count)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.resilience.replica", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_one_replica_opens_the_breaker_and_another_fails_fast(
    redis_url: str, service: FlakyService, url: str, name: str
) -> None:
    service.fail_with(503)
    opener = outcome(replica(redis_url, url, name, "open", 20))
    assert opener["error"] == 3  # consecutive_failures=3 opened it
    assert opener["circuit_open"] == 1
    hits = service.hits

    other = outcome(replica(redis_url, url, name, "probe", 1))
    assert other == {**other, "circuit_open": 1, "ok": 0, "error": 0, "shared": True}
    assert service.hits == hits  # the other replica never called the failing service


def test_replicas_together_stay_within_one_quota(
    redis_url: str, service: FlakyService, url: str, name: str
) -> None:
    first = replica(redis_url, url, name, "quota", 15)
    second = replica(redis_url, url, name, "quota", 15)
    results = [outcome(first), outcome(second)]

    assert sum(result["ok"] for result in results) == 10  # requests_per_minute=10, shared
    assert sum(result["rate_limited"] for result in results) == 20
    assert service.hits == 10


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    where = urlsplit(redis_url)
    with TcpProxy(where.hostname or "127.0.0.1", where.port or 6379) as running:
        yield running


def proxied(redis_url: str, proxy: TcpProxy) -> str:
    where = urlsplit(redis_url)
    return where._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


@pytest.mark.parametrize("fault", ["cut", "black_hole"])
def test_redis_going_away_mid_test_fails_no_call_and_is_used_again_once_back(
    redis_url: str, proxy: TcpProxy, service: FlakyService, url: str, name: str, fault: str
) -> None:
    shared = redis_state.RedisState(proxied(redis_url, proxy), timeout=0.2)
    state = FailoverState(shared, recheck=0.1)
    resilience = Resilience(state)
    policy = Policy(
        retry=RetryPolicy(attempts=1),
        breaker=BreakerPolicy(consecutive_failures=2, cool_down=600),
        rate_limit=RateLimitPolicy(requests_per_minute=1000),
    )
    guarded = resilient(name, policy=policy, resilience=resilience)

    def fetch() -> int:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.status_code

    try:
        for _ in range(5):
            assert guarded.call(fetch) == 200
        assert state.down_since is None

        getattr(proxy, fault)()
        for _ in range(20):
            assert guarded.call(fetch) == 200  # not one failed call
        assert state.down_since is not None
        assert state.reason

        # While Redis is away the breaker is this process's own; it opens here...
        service.fail_with(503)
        for _ in range(2):
            with pytest.raises(httpx.HTTPStatusError):
                guarded.call(fetch)
        with pytest.raises(CircuitOpen):
            guarded.call(fetch)

        proxy.restore()
        wait_until(lambda: state.down_since is None, what="Redis to be used again")
        # ...and once Redis is back, the other replicas learn it is open.
        direct = redis_state.RedisState(redis_url, timeout=2.0)
        try:
            assert direct.circuit(name).state is CircuitState.OPEN
        finally:
            direct.close()
    finally:
        state.close()
