"""One integration's guard: the order in which a call meets the breaker, the limits, its
attempts, retries and fallbacks, written once for blocking and ``async`` callers alike.

:meth:`Guard.flow` is a generator that says what to do next (admit, take room, call, sleep…) and
receives the answer; :meth:`Guard.run` carries the steps out blocking, :meth:`Guard.run_async`
awaiting. An error raised by a step is thrown back into the flow, so a cancelled or interrupted
call still frees its concurrency slot. A ``with`` block is a flow run up to its one call
(:class:`Block`): a block cannot be run again, so it is never retried and has no fallback.

Order of a call: a breaker this process saw open fails fast without asking the shared state;
then the concurrency slot, the rate limits (a request taken is spent even if the breaker then
refuses), the breaker's admission, the attempt. Only failures of the service count against the
breaker (see :mod:`watchkeeper.resilience.schedule`); the caller's own errors count as answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute

from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.breaker import Transition
from watchkeeper.resilience.bulkhead import Bulkhead
from watchkeeper.resilience.errors import BulkheadFull, CircuitOpen, RateLimited, ResilienceError
from watchkeeper.resilience.events import CallRecord, Events
from watchkeeper.resilience.policy import Hooks, Policy
from watchkeeper.resilience.schedule import delay_before, error_failure, is_unauthorized
from watchkeeper.resilience.state import Cached, StateBackend

R = TypeVar("R")

# The steps a flow asks for; each is a tuple led by one of these.
CALL, SLEEP, ADMIT, RECORD, TAKE, CHARGE, ENTER, CACHED, KEEP, REFRESH, FALLBACK = range(11)

Step = tuple[Any, ...]
Flow = Generator[Step, Any, Any]

_monotonic = time.monotonic
_now = time.time


class Guard:
    """The policy of one integration, applied; shared by every call to it in the process."""

    def __init__(
        self, name: str, policy: Policy, hooks: Hooks, state: StateBackend, events: Events
    ) -> None:
        self.name = name
        self.policy = policy
        self.hooks = hooks
        self.state = state
        self.events = events
        limits = policy.rate_limit
        self.requests: RateLimitItem | None = (
            None
            if limits.requests_per_minute is None
            else RateLimitItemPerMinute(limits.requests_per_minute, namespace="requests")
        )
        self.tokens: RateLimitItem | None = (
            None
            if limits.tokens_per_minute is None
            else RateLimitItemPerMinute(limits.tokens_per_minute, namespace="tokens")
        )
        concurrency = policy.bulkhead.max_concurrent
        self.bulkhead = None if concurrency is None else Bulkhead(concurrency)
        self.circuit = CircuitState.CLOSED
        """The breaker's state as this process last saw it (shared state may know better)."""
        self._open_until = 0.0

    # -- what this process saw of the breaker --------------------------------------------------

    def saw(self, state: CircuitState, open_until: float = 0.0) -> None:
        self.circuit = state
        self._open_until = open_until

    def _note(self, change: Transition | None) -> None:
        if change is None:
            return
        self.saw(
            change.after,
            change.at + self.policy.breaker.cool_down if change.after is CircuitState.OPEN else 0.0,
        )
        self.events.transition(change)

    # -- the flow ------------------------------------------------------------------------------

    def flow(
        self,
        record: CallRecord,
        key: str | None,
        idempotent: bool,
        fallback: bool,
        once: bool,
        refresh: bool = False,
    ) -> Flow:
        """One call, start to end; ``once``: a with-block's, which cannot be repeated."""
        policy = self.policy
        deadline = None if policy.deadline is None else _monotonic() + policy.deadline
        caching = key is not None and policy.fallback.cache
        if caching and policy.fallback.fresh_for > 0:
            cached: Cached | None = yield (CACHED, key)
            if cached is not None and _now() - cached.stored_at <= policy.fallback.fresh_for:
                record.cache = "fresh"
                return cached.value
        retries = 0
        refreshed = once
        while True:
            try:
                result = yield from self._attempt(record, deadline)
            except ResilienceError as refusal:
                record.rejected = refusal.reason
                self.events.publish(
                    "rejected", self.name, reason=refusal.reason, retry_in=refusal.retry_in
                )
                if once:
                    raise
                return (
                    yield from self._fall_back(refusal, record, key if caching else None, fallback)
                )
            except Exception as error:
                if refresh and not refreshed and is_unauthorized(error, policy.refresh_on):
                    refreshed = True
                    yield from self._refresh(record, error)
                    continue
                failure = error_failure(error, policy.retry)
                if failure is None or once:
                    raise
                delay = None
                if retries + 1 < policy.retry.attempts and failure.worth_retrying(idempotent):
                    delay = delay_before(retries + 1, failure, policy.retry)
                    if delay is not None and deadline is not None:
                        delay = delay if _monotonic() + delay < deadline else None
                if delay is None:
                    return (
                        yield from self._fall_back(
                            error, record, key if caching else None, fallback
                        )
                    )
                retries += 1
                retry = {
                    "attempt": record.attempts,
                    "reason": failure.reason,
                    "delay": round(delay, 3),
                }
                if record.retries is None:
                    record.retries = []
                record.retries.append(retry)
                self.events.publish("retry", self.name, **retry)
                yield (SLEEP, delay)
                continue
            if caching:
                yield (KEEP, key, result)
            return result

    def _attempt(self, record: CallRecord, deadline: float | None) -> Flow:
        policy = self.policy
        breaker = policy.breaker.enabled
        if breaker and self._open_until:
            left = self._open_until - _now()
            if left > 0:
                raise CircuitOpen(self.name, f"the {self.name} circuit is open", left)
        bulkhead = self.bulkhead
        if bulkhead is not None and not bulkhead.try_enter():
            started = _monotonic()
            entered = yield (ENTER, bulkhead, _budget(policy.bulkhead.wait, deadline))
            record.waited += _monotonic() - started
            if not entered:
                raise BulkheadFull(
                    self.name,
                    f"{bulkhead.limit} calls to {self.name} are in flight already",
                )
        try:
            if self.requests is not None or self.tokens is not None:
                yield from self._take(record, deadline)
            trial = False
            if breaker:
                admission = yield (ADMIT,)
                self._note(admission.transition)
                if not admission.allowed:
                    self.saw(admission.state, _now() + admission.retry_in)
                    raise CircuitOpen(
                        self.name,
                        f"the {self.name} circuit is {admission.state.value.replace('_', '-')}",
                        admission.retry_in,
                    )
                self.saw(admission.state)
                trial = admission.trial
            record.attempts += 1
            try:
                result = yield (CALL, _attempt_timeout(policy.timeout, deadline))
            except Exception as error:
                if breaker:
                    ok = error_failure(error, policy.retry) is None
                    self._note((yield (RECORD, ok, trial)))
                raise
            if breaker:
                self._note((yield (RECORD, True, trial)))
            if self.tokens is not None:
                used = tokens_used(result)
                if used > 1:
                    yield (CHARGE, self.tokens, used - 1)
            return result
        finally:
            if bulkhead is not None:
                bulkhead.leave()

    def _take(self, record: CallRecord, deadline: float | None) -> Flow:
        budget = _budget(self.policy.rate_limit.wait, deadline)
        waited = 0.0
        for limit, what in ((self.requests, "requests"), (self.tokens, "tokens")):
            if limit is None:
                continue
            while True:
                wait: float = yield (TAKE, limit, 1)
                if wait <= 0:
                    break
                if waited + wait > budget:
                    record.waited += waited
                    raise RateLimited(
                        self.name,
                        f"{self.name}'s limit of {limit.amount} {what} per minute is reached",
                        wait,
                    )
                yield (SLEEP, wait)
                waited += wait
        record.waited += waited

    def _refresh(self, record: CallRecord, error: Exception) -> Flow:
        try:
            yield (REFRESH,)
        except Exception as failed:
            record.refreshed = "failed"
            self.events.publish("refresh", self.name, outcome="failed", error=type(failed).__name__)
            raise error from failed
        record.refreshed = "ok"
        self.events.publish("refresh", self.name, outcome="ok")

    def _fall_back(
        self, error: Exception, record: CallRecord, key: str | None, fallback: bool
    ) -> Flow:
        reason = getattr(error, "reason", None) or type(error).__name__
        if fallback:
            kind = (
                "function"
                if self.policy.fallback.to is None
                else f"integration:{self.policy.fallback.to}"
            )
            try:
                value = yield (FALLBACK,)
            except Exception as failed:
                self.events.publish(
                    "fallback_failed", self.name, kind=kind, error=type(failed).__name__
                )
            else:
                record.fallback = kind
                record.failure = error
                self.events.publish("fallback", self.name, kind=kind, reason=reason)
                return value
        if key is not None:
            cached: Cached | None = yield (CACHED, key)
            if cached is not None:
                age = _now() - cached.stored_at
                if age <= self.policy.fallback.stale_if_error:
                    record.fallback = "cache"
                    record.failure = error
                    self.events.publish(
                        "fallback", self.name, kind="cache", reason=reason, age=round(age, 3)
                    )
                    return cached.value
        raise error

    # -- carrying the steps out ------------------------------------------------------------------

    def run(
        self,
        call: Callable[[], R],
        record: CallRecord,
        key: str | None = None,
        idempotent: bool = False,
        fallback: Callable[[], Any] | None = None,
        refresh: Callable[[], Any] | None = None,
    ) -> R:
        """``refresh``: what refreshes credentials for this call, instead of the hook."""
        refresh = refresh or self.hooks.refresh
        flow = self.flow(record, key, idempotent, fallback is not None, False, refresh is not None)
        reply: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                step = flow.send(reply) if thrown is None else flow.throw(thrown)
            except StopIteration as done:
                result: R = done.value
                return result
            thrown = None
            try:
                code = step[0]
                if code == CALL:
                    reply = call()
                elif code == FALLBACK:
                    reply = fallback() if fallback is not None else None
                elif code == REFRESH:
                    reply = self._refresh_now(refresh)
                else:
                    reply = self.step(step)
            except BaseException as error:
                thrown, reply = error, None

    def step(self, step: Step) -> Any:
        """Carry out one step that needs no ``await`` (anything but the call itself)."""
        code = step[0]
        state = self.state
        if code == ADMIT:
            return state.admit(self.name, self.policy.breaker, _now())
        if code == RECORD:
            return state.record(self.name, self.policy.breaker, _now(), step[1], step[2])
        if code == TAKE:
            return state.take(self.name, step[1], step[2], _now())
        if code == CHARGE:
            return state.charge(self.name, step[1], step[2])
        if code == SLEEP:
            return time.sleep(step[1])
        if code == ENTER:
            return step[1].enter(step[2])
        if code == CACHED:
            return state.cached(self.name, step[1])
        if code == KEEP:
            return state.keep(self.name, step[1], step[2], self.policy.fallback, _now())
        raise ValueError(f"unknown step {step!r}")

    def _refresh_now(self, hook: Callable[[], Any] | None) -> Any:
        result = hook() if hook is not None else None
        if isinstance(result, Awaitable):
            _close(result)
            raise TypeError(
                f"the {self.name} refresh hook is async, but the call it refreshes is not: "
                "give a blocking hook for blocking calls"
            )
        return result

    async def run_async(
        self,
        call: Callable[[], Awaitable[R]],
        record: CallRecord,
        key: str | None = None,
        idempotent: bool = False,
        fallback: Callable[[], Any] | None = None,
        refresh: Callable[[], Any] | None = None,
    ) -> R:
        """``refresh``: what refreshes credentials for this call, instead of the hook."""
        refresh = refresh or self.hooks.refresh
        flow = self.flow(record, key, idempotent, fallback is not None, False, refresh is not None)
        reply: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                step = flow.send(reply) if thrown is None else flow.throw(thrown)
            except StopIteration as done:
                result: R = done.value
                return result
            thrown = None
            try:
                code = step[0]
                if code == CALL:
                    if step[1] is None:
                        reply = await call()
                    else:
                        async with asyncio.timeout(step[1]):
                            reply = await call()
                elif code == FALLBACK:
                    reply = await _maybe_await(fallback() if fallback is not None else None)
                elif code == REFRESH:
                    reply = await _maybe_await(refresh() if refresh is not None else None)
                else:
                    reply = await self.step_async(step)
            except BaseException as error:
                thrown, reply = error, None

    async def step_async(self, step: Step) -> Any:
        code = step[0]
        state = self.state
        if code == ADMIT:
            return await state.admit_async(self.name, self.policy.breaker, _now())
        if code == RECORD:
            return await state.record_async(
                self.name, self.policy.breaker, _now(), step[1], step[2]
            )
        if code == TAKE:
            return await state.take_async(self.name, step[1], step[2], _now())
        if code == CHARGE:
            return await state.charge_async(self.name, step[1], step[2])
        if code == SLEEP:
            return await asyncio.sleep(step[1])
        if code == ENTER:
            return await step[1].enter_async(step[2])
        if code == CACHED:
            return await state.cached_async(self.name, step[1])
        if code == KEEP:
            return await state.keep_async(self.name, step[1], step[2], self.policy.fallback, _now())
        raise ValueError(f"unknown step {step!r}")


def _budget(wait: float, deadline: float | None) -> float:
    if deadline is None:
        return wait
    return max(0.0, min(wait, deadline - _monotonic()))


def _attempt_timeout(timeout: float | None, deadline: float | None) -> float | None:
    if deadline is None:
        return timeout
    left = max(deadline - _monotonic(), 0.001)
    return left if timeout is None else min(timeout, left)


async def _maybe_await(value: Any) -> Any:
    if isinstance(value, Awaitable):
        return await value
    return value


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # a coroutine never awaited would warn at garbage collection


_USAGE_FIELDS = (
    ("total_tokens",),
    ("input_tokens", "output_tokens"),
    ("prompt_tokens", "completion_tokens"),
)


def tokens_used(result: object) -> int:
    """Tokens an AI answer reports in its ``usage`` (OpenAI, Anthropic and alike), else 0."""
    usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
    if usage is None:
        return 0
    for fields in _USAGE_FIELDS:
        values = [
            usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
            for name in fields
        ]
        counts = [value for value in values if isinstance(value, int)]
        if len(counts) == len(fields):
            return sum(counts)
    return 0
