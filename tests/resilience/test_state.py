"""The breaker, limits and cache behave the same in memory and in the real Redis; a shared
state that is down or slow never fails or holds up a call."""

from __future__ import annotations

import importlib
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from limits import RateLimitItemPerMinute

from tests.support.waiting import wait_until
from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.calls import resilient
from watchkeeper.resilience.doubles import UnreliableState
from watchkeeper.resilience.failover import FailoverState
from watchkeeper.resilience.policy import BreakerPolicy, FallbackPolicy, Policy, RetryPolicy
from watchkeeper.resilience.registry import Resilience
from watchkeeper.resilience.state import MemoryState, StateBackend

RULES = BreakerPolicy(
    failure_rate=0.5, minimum_calls=4, window=60, consecutive_failures=3, cool_down=30
)
T = 1_800_000_000.0


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[StateBackend]:
    if request.param == "memory":
        backend: StateBackend = MemoryState()
    else:
        url = os.environ.get("WATCHKEEPER_TEST_REDIS_URL")
        if not url:
            pytest.skip("set WATCHKEEPER_TEST_REDIS_URL to run the Redis tests")
        redis_state = importlib.import_module("watchkeeper.resilience.redis_state")
        backend = redis_state.RedisState(url, timeout=2.0)
    yield backend
    backend.close()


@pytest.fixture
def name() -> str:
    return f"svc-{uuid.uuid4().hex[:12]}"


def test_consecutive_failures_open_it_and_a_trial_after_the_cool_down_closes_it(
    state: StateBackend, name: str
) -> None:
    assert state.record(name, RULES, T, ok=False, trial=False) is None
    assert state.record(name, RULES, T + 1, ok=False, trial=False) is None
    opened = state.record(name, RULES, T + 2, ok=False, trial=False)
    assert opened is not None
    assert (opened.before, opened.after, opened.reason) == (
        CircuitState.CLOSED,
        CircuitState.OPEN,
        "3 failures in a row",
    )
    assert state.circuit(name).state is CircuitState.OPEN

    refused = state.admit(name, RULES, T + 12)
    assert (refused.allowed, refused.state) == (False, CircuitState.OPEN)
    assert refused.retry_in == pytest.approx(20)

    trial = state.admit(name, RULES, T + 32)
    assert (trial.allowed, trial.trial, trial.state) == (True, True, CircuitState.HALF_OPEN)
    assert trial.transition is not None
    assert trial.transition.before is CircuitState.OPEN
    second = state.admit(name, RULES, T + 33)
    assert (second.allowed, second.state) == (False, CircuitState.HALF_OPEN)

    closed = state.record(name, RULES, T + 34, ok=True, trial=True)
    assert closed is not None
    assert (closed.before, closed.after) == (CircuitState.HALF_OPEN, CircuitState.CLOSED)
    assert state.admit(name, RULES, T + 35).allowed


def test_the_failure_rate_opens_it_once_the_window_holds_enough_calls(
    state: StateBackend, name: str
) -> None:
    outcomes = [True, False, True]
    for second, ok in enumerate(outcomes):
        assert state.record(name, RULES, T + second, ok=ok, trial=False) is None
    opened = state.record(name, RULES, T + 3, ok=False, trial=False)
    assert opened is not None
    assert opened.reason == "2 of 4 calls failed in 60 s"


def test_calls_older_than_the_window_are_forgotten(state: StateBackend, name: str) -> None:
    for second in range(2):
        state.record(name, RULES, T + second, ok=False, trial=False)
        state.record(name, RULES, T + second, ok=True, trial=False)
    # A minute later those four calls are out of the window: two failures judge nothing yet.
    later = T + 120
    state.record(name, RULES, later, ok=False, trial=False)
    state.record(name, RULES, later, ok=True, trial=False)
    assert state.circuit(name).state is CircuitState.CLOSED


def test_a_failed_trial_opens_it_again_and_a_lost_one_is_written_off(
    state: StateBackend, name: str
) -> None:
    state.force_open(name, T, "by hand")
    assert state.admit(name, RULES, T + 30).trial
    reopened = state.record(name, RULES, T + 31, ok=False, trial=True)
    assert reopened is not None
    assert reopened.before is CircuitState.HALF_OPEN

    assert state.admit(name, RULES, T + 61).trial  # a trial whose outcome never comes back
    assert not state.admit(name, RULES, T + 62).allowed
    assert state.admit(name, RULES, T + 91).allowed  # written off after another cool-down


def test_rate_limits_take_room_and_say_how_long_until_there_is_more(
    state: StateBackend, name: str
) -> None:
    limit = RateLimitItemPerMinute(3, namespace="requests")
    now = time.time()
    assert [state.take(name, limit, 1, now) for _ in range(3)] == [0, 0, 0]
    wait = state.take(name, limit, 1, now)
    assert 0 < wait <= 120  # a sliding window frees its last request within two windows

    tokens = RateLimitItemPerMinute(100, namespace="tokens")
    state.charge(name, tokens, 250)  # more than there is: the window is spent, not refused
    assert state.take(name, tokens, 1, now) > 0


def test_cached_answers_are_kept_up_to_the_most_entries(state: StateBackend, name: str) -> None:
    rules = FallbackPolicy(cache=True, max_entries=2)
    for number in range(3):
        state.keep(name, f"k{number}", {"answer": number}, rules, T + number)
    assert state.cached(name, "k0") is None
    kept = state.cached(name, "k2")
    assert kept is not None
    assert (kept.value, kept.stored_at) == ({"answer": 2}, T + 2)


def test_a_shared_state_that_goes_down_fails_no_call_and_is_resynced_when_back(
    name: str,
) -> None:
    shared = UnreliableState()
    state = FailoverState(shared, recheck=0.05)
    resilience = Resilience(state)
    policy = Policy(
        retry=RetryPolicy(attempts=1),
        breaker=BreakerPolicy(consecutive_failures=1, cool_down=600),
    )
    guarded = resilient(name, policy=policy, resilience=resilience)
    try:
        assert guarded.call(lambda: "answer") == "answer"
        shared.down = True
        assert guarded.call(lambda: "answer") == "answer"
        assert state.down_since is not None
        operations = shared.operations
        assert guarded.call(lambda: "answer") == "answer"
        assert shared.operations == operations  # while down, calls never wait on it

        with pytest.raises(ConnectionRefusedError):
            guarded.call(_refused)
        assert shared.inner.circuit(name).state is CircuitState.CLOSED  # not told yet

        shared.down = False
        wait_until(lambda: state.down_since is None, what="the shared state to be used again")
        assert shared.inner.circuit(name).state is CircuitState.OPEN
    finally:
        state.close()


def test_a_slow_shared_state_holds_up_one_call_at_most_once(name: str) -> None:
    shared = UnreliableState()
    state = FailoverState(shared, recheck=60)
    resilience = Resilience(state)
    guarded = resilient(name, resilience=resilience)
    try:
        shared.down = True
        shared.delay = 0.3  # as a socket timeout would take
        guarded.call(lambda: None)
        operations = shared.operations
        for _ in range(50):
            guarded.call(lambda: None)
        assert shared.operations == operations
    finally:
        state.close()


def _refused() -> None:
    raise ConnectionRefusedError("the service is down")
