"""resilient() against a real HTTP service: retries, Retry-After, timeouts, the breaker,
fallbacks, credential refresh, rate and concurrency limits, and what each call records."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest

from tests.resilience.flaky import FlakyService, Reply
from watchkeeper.health.circuits import CircuitState
from watchkeeper.model.events import SpanStatus
from watchkeeper.recording import attributes
from watchkeeper.resilience.calls import resilient
from watchkeeper.resilience.errors import BulkheadFull, CircuitOpen, RateLimited
from watchkeeper.resilience.policy import (
    BreakerPolicy,
    BulkheadPolicy,
    FallbackPolicy,
    Policy,
    RateLimitPolicy,
    RetryPolicy,
)
from watchkeeper.resilience.registry import Resilience
from watchkeeper.testing.plugin import RecorderUnderTest

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
NO_BREAKER = BreakerPolicy(enabled=False)


def fetch(url: str, method: str = "GET", token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, url, headers=headers, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def fetch_async(url: str, method: str = "GET") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.request(method, url)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def span_of(recorder: RecorderUnderTest, name: str = "svc") -> Any:
    spans = recorder.recorded_spans(name=name)
    assert spans, f"no span named {name}"
    return spans[-1]


def test_a_503_is_retried_with_backoff_until_the_service_answers(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.plan(Reply(503), Reply(503))
    guarded = resilient(
        "svc", policy=Policy(retry=FAST), resilience=resilience, recorder=watchkeeper_recorder
    )

    body = guarded.call(fetch, url, "POST")

    assert body["hit"] == 3
    span = span_of(watchkeeper_recorder)
    assert span.status is SpanStatus.OK
    assert span.attributes[attributes.RESILIENCE_ATTEMPTS] == 3
    retries = span.attributes[attributes.RESILIENCE_RETRIES]
    assert [retry["reason"] for retry in retries] == ["status 503", "status 503"]
    assert all(0 <= retry["delay"] <= 0.05 for retry in retries)


def test_what_the_service_may_have_acted_on_is_retried_only_when_idempotent(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.plan(Reply(500))
    once = resilient("svc", policy=Policy(retry=FAST), resilience=resilience)
    with pytest.raises(httpx.HTTPStatusError):
        once.call(fetch, url, "POST")
    assert service.hits == 1

    service.plan(Reply(500))
    idempotent = FAST.model_copy(update={"idempotent": True})
    again = resilient("svc2", policy=Policy(retry=idempotent), resilience=resilience)
    assert again.call(fetch, url, "POST")["hit"] == 3


def test_retry_after_is_honoured_and_one_beyond_the_cap_is_not_waited_for(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.plan(Reply(429, retry_after="1"))
    guarded = resilient(
        "svc", policy=Policy(retry=FAST), resilience=resilience, recorder=watchkeeper_recorder
    )
    started = time.monotonic()
    assert guarded.call(fetch, url)["hit"] == 2
    assert time.monotonic() - started >= 1.0
    (retry,) = span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_RETRIES]
    assert retry == {"attempt": 1, "reason": "status 429", "delay": 1.0}

    service.plan(Reply(429, retry_after="3600"))
    with pytest.raises(httpx.HTTPStatusError):
        guarded.call(fetch, url)
    assert service.hits == 3


def test_the_callers_own_errors_are_neither_retried_nor_held_against_the_service(
    resilience: Resilience,
) -> None:
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug of the caller's")

    guarded = resilient(
        "svc",
        policy=Policy(retry=FAST, breaker=BreakerPolicy(consecutive_failures=1)),
        resilience=resilience,
    )
    for _ in range(3):
        with pytest.raises(ValueError, match="a bug"):
            guarded.call(broken)
    assert calls == 3
    assert resilience.guard("svc").circuit is CircuitState.CLOSED


@pytest.mark.anyio
async def test_an_attempt_past_its_timeout_is_cut_and_retried(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.plan(Reply(delay=5))
    retry = FAST.model_copy(update={"idempotent": True})
    guarded = resilient(
        "svc",
        policy=Policy(timeout=1.0, retry=retry),
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )

    assert (await guarded.call_async(fetch_async, url))["hit"] == 2

    (retry_record,) = span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_RETRIES]
    assert retry_record["reason"] == "TimeoutError"


@pytest.mark.anyio
async def test_the_deadline_bounds_all_attempts(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    service.fail_with(503)
    policy = Policy(
        timeout=0.5,
        deadline=0.6,
        retry=RetryPolicy(attempts=10, base_delay=0.2, max_delay=0.2),
        breaker=NO_BREAKER,
    )
    guarded = resilient("svc", policy=policy, resilience=resilience)
    started = time.monotonic()
    # The last attempt's answer, or its cut-off when the deadline fell during it.
    with pytest.raises((httpx.HTTPStatusError, TimeoutError)):
        await guarded.call_async(fetch_async, url)
    assert time.monotonic() - started < 5
    assert service.hits < 10


def test_the_breaker_opens_fails_fast_then_lets_a_trial_through_and_closes(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    breaker = BreakerPolicy(consecutive_failures=3, cool_down=0.5)
    guarded = resilient(
        "svc",
        policy=Policy(retry=RetryPolicy(attempts=1), breaker=breaker),
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    service.fail_with(502)
    for _ in range(3):
        with pytest.raises(httpx.HTTPStatusError):
            guarded.call(fetch, url)
    assert resilience.guard("svc").circuit is CircuitState.OPEN

    with pytest.raises(CircuitOpen) as refused:
        guarded.call(fetch, url)
    assert service.hits == 3  # refused without calling
    assert refused.value.retry_in is not None
    assert 0 < refused.value.retry_in <= 0.5
    assert span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_REJECTED] == (
        "circuit_open"
    )

    service.recover()
    deadline = time.monotonic() + 30
    while True:
        try:
            guarded.call(fetch, url)
            break
        except CircuitOpen:
            assert time.monotonic() < deadline, "the breaker never let a trial call through"
            time.sleep(0.05)
    assert resilience.guard("svc").circuit is CircuitState.CLOSED

    watchkeeper_recorder.flush()
    moves = [
        (point.attributes or {}).get("to")
        for point in watchkeeper_recorder.memory.metrics
        if point.name == attributes.CIRCUIT_METRIC
    ]
    assert moves == ["open", "half_open", "closed"]


def test_the_breaker_opens_on_the_failure_rate_once_enough_calls_were_seen(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    breaker = BreakerPolicy(failure_rate=0.5, minimum_calls=6, consecutive_failures=None)
    guarded = resilient(
        "svc", policy=Policy(retry=RetryPolicy(attempts=1), breaker=breaker), resilience=resilience
    )
    service.plan(Reply(500), Reply(), Reply(500), Reply(), Reply(500))
    for _ in range(5):
        with contextlib.suppress(httpx.HTTPStatusError):
            guarded.call(fetch, url)
    assert resilience.guard("svc").circuit is CircuitState.CLOSED  # 3 of 5: too few calls
    service.plan(Reply(500))
    with pytest.raises(httpx.HTTPStatusError):
        guarded.call(fetch, url)
    assert resilience.guard("svc").circuit is CircuitState.OPEN  # 4 of 6


def test_a_failed_trial_opens_the_breaker_again(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    breaker = BreakerPolicy(consecutive_failures=1, cool_down=0.2)
    guarded = resilient(
        "svc", policy=Policy(retry=RetryPolicy(attempts=1), breaker=breaker), resilience=resilience
    )
    service.fail_with(503)
    with pytest.raises(httpx.HTTPStatusError):
        guarded.call(fetch, url)
    deadline = time.monotonic() + 30
    while service.hits < 2:
        assert time.monotonic() < deadline
        with pytest.raises((CircuitOpen, httpx.HTTPStatusError)):
            guarded.call(fetch, url)
        time.sleep(0.02)
    assert resilience.guard("svc").circuit is CircuitState.OPEN


def test_fallbacks_answer_from_a_function_another_integration_or_the_last_good_answer(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    def second_provider(address: str) -> dict[str, Any]:
        return {"from": "second", "address": address}

    no_retry = RetryPolicy(attempts=1)
    service.fail_with(503)
    via_function = resilient(
        "svc",
        policy=Policy(retry=no_retry),
        fallback=second_provider,
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    assert via_function.call(fetch, url) == {"from": "second", "address": url}
    span = span_of(watchkeeper_recorder)
    assert span.attributes[attributes.RESILIENCE_FALLBACK] == "function"
    assert span.status is SpanStatus.ERROR  # the service failed, whoever answered

    via_integration = resilient(
        "primary",
        policy=Policy(retry=no_retry, fallback=FallbackPolicy(to="backup")),
        fallback=second_provider,
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    assert via_integration.call(fetch, url)["from"] == "second"
    assert span_of(watchkeeper_recorder, "backup").status is SpanStatus.OK
    primary = span_of(watchkeeper_recorder, "primary")
    assert primary.attributes[attributes.RESILIENCE_FALLBACK] == "integration:backup"

    cached = resilient(
        "cached",
        policy=Policy(retry=no_retry, fallback=FallbackPolicy(cache=True, stale_if_error=60)),
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    service.recover()
    good = cached.call(fetch, url)
    service.fail_with(503)
    assert cached.call(fetch, url) == good
    assert span_of(watchkeeper_recorder, "cached").attributes[attributes.RESILIENCE_FALLBACK] == (
        "cache"
    )
    with pytest.raises(httpx.HTTPStatusError):
        cached.call(fetch, url + "?other=1")  # nothing cached for that key


def test_fresh_answers_are_served_from_the_cache_without_a_call(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    guarded = resilient(
        "svc",
        policy=Policy(fallback=FallbackPolicy(cache=True, fresh_for=60)),
        resilience=resilience,
    )
    first = guarded.call(fetch, url)
    assert guarded.call(fetch, url) == first
    assert service.hits == 1


def test_an_unauthorised_answer_refreshes_the_credential_once_and_tries_again(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.token = "fresh"
    credential = {"token": "expired"}
    refreshes = 0

    def refresh() -> None:
        nonlocal refreshes
        refreshes += 1
        credential["token"] = "fresh"

    guarded = resilient(
        "svc", refresh=refresh, resilience=resilience, recorder=watchkeeper_recorder
    )
    assert guarded.call(lambda: fetch(url, token=credential["token"]))["status"] == 200
    assert refreshes == 1
    assert service.seen_tokens == ["expired", "fresh"]
    assert span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_REFRESHED] == "ok"

    service.token = "rotated-again-elsewhere"
    with pytest.raises(httpx.HTTPStatusError):
        guarded.call(lambda: fetch(url, token=credential["token"]))
    assert refreshes == 2  # once per call, never in a loop


def test_requests_beyond_the_rate_limit_fail_fast(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    limits = RateLimitPolicy(requests_per_minute=3, wait=0.2)
    guarded = resilient(
        "svc",
        policy=Policy(rate_limit=limits),
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    for _ in range(3):
        guarded.call(fetch, url)
    with pytest.raises(RateLimited) as refused:
        guarded.call(fetch, url)
    assert service.hits == 3
    assert refused.value.retry_in is not None
    assert refused.value.retry_in > 0
    assert span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_REJECTED] == (
        "rate_limited"
    )


def test_tokens_reported_by_answers_count_against_the_token_limit(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    service.default = Reply(usage=100)
    guarded = resilient(
        "svc",
        policy=Policy(rate_limit=RateLimitPolicy(tokens_per_minute=150)),
        resilience=resilience,
    )
    guarded.call(fetch, url)
    guarded.call(fetch, url)  # room for its first token, then it uses more than is left
    with pytest.raises(RateLimited, match="150 tokens per minute"):
        guarded.call(fetch, url)
    assert service.hits == 2


@pytest.mark.anyio
async def test_the_bulkhead_refuses_or_queues_calls_beyond_its_limit(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    service.default = Reply(delay=0.5)
    refusing = resilient(
        "svc", policy=Policy(bulkhead=BulkheadPolicy(max_concurrent=1)), resilience=resilience
    )
    outcomes = await asyncio.gather(
        refusing.call_async(fetch_async, url),
        refusing.call_async(fetch_async, url),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, BulkheadFull) for outcome in outcomes) == 1

    queueing = resilient(
        "queued",
        policy=Policy(bulkhead=BulkheadPolicy(max_concurrent=1, wait=30)),
        resilience=resilience,
    )
    outcomes = await asyncio.gather(*(queueing.call_async(fetch_async, url) for _ in range(3)))
    assert len(outcomes) == 3
    assert resilience.guard("queued").bulkhead is not None
    assert resilience.guard("queued").bulkhead.in_flight == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_cancelled_call_gives_its_concurrency_slot_back(
    service: FlakyService, url: str, resilience: Resilience
) -> None:
    service.default = Reply(delay=5)
    guarded = resilient(
        "svc", policy=Policy(bulkhead=BulkheadPolicy(max_concurrent=1)), resilience=resilience
    )
    task = asyncio.ensure_future(guarded.call_async(fetch_async, url))
    while service.hits == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    bulkhead = resilience.guard("svc").bulkhead
    assert bulkhead is not None
    assert bulkhead.in_flight == 0


def test_a_with_block_is_refused_while_open_and_tells_the_breaker_how_it_went(
    resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    block = resilient(
        "svc",
        policy=Policy(breaker=BreakerPolicy(consecutive_failures=2, cool_down=60)),
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError), block:
            raise ConnectionRefusedError("no answer")
    with pytest.raises(CircuitOpen), block:
        pytest.fail("the body of a refused block must not run")
    assert span_of(watchkeeper_recorder).attributes[attributes.RESILIENCE_REJECTED] == (
        "circuit_open"
    )


@pytest.mark.anyio
async def test_an_async_block_is_bounded_by_the_timeout(resilience: Resilience) -> None:
    block = resilient("svc", policy=Policy(timeout=0.2), resilience=resilience)
    with pytest.raises(TimeoutError):
        async with block:
            await asyncio.sleep(10)
    async with block as span:
        span.usage(input_tokens=3)


def test_generators_are_refused_with_a_reason() -> None:
    def stream() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        resilient("svc")(stream)
