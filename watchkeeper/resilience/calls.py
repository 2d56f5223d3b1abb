"""``watchkeeper.resilient(name)``: a call guarded by its integration's policy, recorded as the
integration span.

As a decorator (functions and coroutine functions) it retries, falls back and refreshes
credentials. As a ``with``/``async with`` block it can do none of that, since a block's body
cannot be run again: it waits for or refuses room (rate limit, concurrency), fails fast while
the breaker is open (:class:`CircuitOpen` from the ``with`` line), bounds an ``async with``
body by the timeout, and tells the breaker how the body went. Use ``.call(function, ...)`` or
``await .call_async(...)`` for the decorator's behaviour without decorating.

Generators are refused: a stream is retried only before its first byte, which the httpx
transport (:mod:`watchkeeper.resilience.transport`) does for streamed responses.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from watchkeeper.instrumentation.decorators import Recorded, integration
from watchkeeper.instrumentation.propagation import recording_span
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan, current_span
from watchkeeper.resilience.engine import CALL, Flow, Guard
from watchkeeper.resilience.events import CallRecord
from watchkeeper.resilience.policy import Hooks, Policy, Refresh
from watchkeeper.resilience.registry import Resilience, get_resilience

P = ParamSpec("P")
R = TypeVar("R")


def default_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A call's cache key from its arguments' ``repr`` (give ``key=`` when that is not stable)."""
    text = repr((args, sorted(kwargs.items())))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Block:
    """One open ``with`` block: its flow, waiting at its one call."""

    __slots__ = ("flow", "record", "timeout")

    def __init__(self, flow: Flow, record: CallRecord) -> None:
        self.flow = flow
        self.record = record
        self.timeout: AbstractAsyncContextManager[Any] | None = None


class Resilient:
    """One use of ``resilient(...)``: decorate with it, enter it, or ``.call()`` through it."""

    def __init__(
        self,
        name: str,
        operation: str | None = None,
        *,
        recorder: Recorder | None = None,
        resilience: Resilience | None = None,
    ) -> None:
        self._recorded: Recorded = integration(name, operation, recorder=recorder)
        self.name = name
        self._resilience = resilience
        self._blocks: dict[ActiveSpan, _Block] = {}

    @property
    def resilience(self) -> Resilience:
        return self._resilience or get_resilience()

    @property
    def guard(self) -> Guard:
        return self.resilience.guard(self.name)

    # -- calls -------------------------------------------------------------------------------

    def call(self, function: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """``function(*args, **kwargs)`` under the policy: retried, limited, with fallbacks."""
        guard = self.guard
        record = CallRecord()
        recorded = self._recorded
        with recorded as span:
            # As recorded_by(span) does, without a generator-based context manager per call.
            token = recording_span.set(span)
            try:
                result: R = guard.run(
                    functools.partial(function, *args, **kwargs),
                    record,
                    self._key(guard, args, kwargs),
                    bool(guard.policy.retry.idempotent),
                    self._fallback(guard, args, kwargs, blocking=True),
                )
            finally:
                recording_span.reset(token)
                self._write(record, span)
            # The integration's business rules, as integration() runs them.
            recorded._validate(result)
            return result

    async def call_async(
        self, function: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any
    ) -> R:
        guard = self.guard
        record = CallRecord()
        recorded = self._recorded
        with recorded as span:
            token = recording_span.set(span)
            try:
                result: R = await guard.run_async(
                    functools.partial(function, *args, **kwargs),
                    record,
                    self._key(guard, args, kwargs),
                    bool(guard.policy.retry.idempotent),
                    self._fallback(guard, args, kwargs, blocking=False),
                )
            finally:
                recording_span.reset(token)
                self._write(record, span)
            recorded._validate(result)
            return result

    def _key(self, guard: Guard, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if not guard.policy.fallback.cache:
            return None
        key = guard.hooks.key
        return key(*args, **kwargs) if key is not None else default_key(args, kwargs)

    def _fallback(
        self, guard: Guard, args: tuple[Any, ...], kwargs: dict[str, Any], blocking: bool
    ) -> Callable[[], Any] | None:
        function = guard.hooks.fallback
        if function is None:
            return None
        to = guard.policy.fallback.to
        if to is None:
            return functools.partial(function, *args, **kwargs)
        other = Resilient(to, resilience=self._resilience, recorder=self._recorded._recorder)
        if blocking:
            return functools.partial(other.call, function, *args, **kwargs)
        return functools.partial(other.call_async, function, *args, **kwargs)

    def _write(self, record: CallRecord, span: ActiveSpan) -> None:
        try:
            record.write(span)
        except Exception as error:
            self._recorded.recorder.report_internal_error("recording resilience", error)

    # -- as a decorator ----------------------------------------------------------------------

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        if not callable(function):
            raise TypeError(
                f"watchkeeper.resilient() can only decorate a function, got {function!r}"
            )
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(
                "watchkeeper.resilient() cannot retry a generator once it has yielded: guard "
                "the call that opens the stream, or send it through the resilient httpx transport"
            )
        if inspect.iscoroutinefunction(function):
            coroutine = cast(Callable[..., Awaitable[Any]], function)

            @functools.wraps(function)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(coroutine, *args, **kwargs)

            return cast(Callable[P, R], guarded_async)

        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(function, *args, **kwargs)

        return guarded

    # -- as a block ----------------------------------------------------------------------------

    def _open_block(self) -> tuple[ActiveSpan, _Block]:
        span = self._recorded.__enter__()
        guard = self.guard
        record = CallRecord()
        block = _Block(guard.flow(record, None, False, False, once=True), record)
        self._blocks[span] = block
        return span, block

    def _block_of_exit(self) -> tuple[ActiveSpan, _Block] | None:
        span = current_span.get()
        blocks = self._blocks
        try:
            if span is None or span not in blocks:
                return blocks.popitem()
            return span, blocks.pop(span)
        except KeyError:
            return None

    def _close_block(self, span: ActiveSpan, block: _Block, error: BaseException | None) -> None:
        self._write(block.record, span)
        self._recorded.__exit__(type(error) if error else None, error, None)

    def __enter__(self) -> ActiveSpan:
        span, block = self._open_block()
        guard = self.guard
        try:
            step = block.flow.send(None)
            while step[0] != CALL:
                step = block.flow.send(guard.step(step))
        except BaseException as refused:
            self._blocks.pop(span, None)
            self._close_block(span, block, refused)
            raise
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        found = self._block_of_exit()
        if found is None:
            return
        span, block = found
        guard = self.guard
        try:
            step = block.flow.throw(exc) if exc is not None else block.flow.send(_usage(span))
            while True:
                step = block.flow.send(guard.step(step))
        except StopIteration:
            pass
        except BaseException as error:
            self._unless_own(error, exc)
        finally:
            self._close_block(span, block, exc)

    async def __aenter__(self) -> ActiveSpan:
        span, block = self._open_block()
        guard = self.guard
        try:
            step = block.flow.send(None)
            while step[0] != CALL:
                step = block.flow.send(await guard.step_async(step))
            if step[1] is not None:
                block.timeout = asyncio.timeout(step[1])
                await block.timeout.__aenter__()
        except BaseException as refused:
            self._blocks.pop(span, None)
            self._close_block(span, block, refused)
            raise
        return span

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        found = self._block_of_exit()
        if found is None:
            return
        span, block = found
        guard = self.guard
        timed_out: TimeoutError | None = None
        if block.timeout is not None:
            try:
                await block.timeout.__aexit__(exc_type, exc, traceback)
            except TimeoutError as error:
                # The body ran past its timeout: it ends in a TimeoutError, not a cancellation.
                timed_out = error
                exc = error
        try:
            step = block.flow.throw(exc) if exc is not None else block.flow.send(_usage(span))
            while True:
                step = block.flow.send(await guard.step_async(step))
        except StopIteration:
            pass
        except BaseException as error:
            self._unless_own(error, exc)
        finally:
            self._close_block(span, block, exc)
        if timed_out is not None:
            raise timed_out

    def _unless_own(self, error: BaseException, own: BaseException | None) -> None:
        """The flow re-raises the body's own error (the with statement raises it); anything
        else is Watchkeeper's, contained."""
        if error is not own and isinstance(error, Exception):
            self._recorded.recorder.report_internal_error("ending a resilient block", error)


def _usage(span: ActiveSpan) -> dict[str, Any] | None:
    """What a block's span says it used, read as a call's answer would be (for token limits)."""
    if span.input_tokens is None and span.output_tokens is None:
        return None
    return {
        "usage": {"input_tokens": span.input_tokens or 0, "output_tokens": span.output_tokens or 0}
    }


def resilient(
    name: str,
    operation: str | None = None,
    *,
    policy: Policy | None = None,
    fallback: Callable[..., Any] | None = None,
    refresh: Refresh | None = None,
    key: Callable[..., str] | None = None,
    recorder: Recorder | None = None,
    resilience: Resilience | None = None,
) -> Resilient:
    """Guard calls to the integration ``name`` with its policy, recorded as its span.

    ``policy``, ``fallback`` (called with the call's arguments when it fails), ``refresh``
    (called once after an unauthorised answer, then the call is tried again) and ``key`` (the
    cache key from the call's arguments) are registered for ``name``, for every use of it.
    """
    hooks = Hooks(fallback, refresh, key)
    if policy is not None or hooks != Hooks():
        (resilience or get_resilience()).register(name, policy, hooks)
    return Resilient(name, operation, recorder=recorder, resilience=resilience)
