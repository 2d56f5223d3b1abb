"""``integration``, ``monitor``, ``tool`` and ``agent``: context managers and decorators.

All four are one wrapper with a different span kind. Each works around sync and async functions
and (for ``monitor``) sync and async generators, whose span covers the whole iteration but is
the current span only while the generator's own code runs, never the caller's between steps. The
user's code always runs and its result or exception passes through unchanged; if recording
itself fails, the failure is contained and the code runs unrecorded.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from watchkeeper.instrumentation.validation import validators
from watchkeeper.model.events import SpanKind
from watchkeeper.recording import attributes
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan, current_span

P = ParamSpec("P")
R = TypeVar("R")

_SUBJECTS = {
    "integration": "the integration's",
    "monitor": "a",
    "tool": "the tool's",
    "agent": "the agent's",
}


def _discard(span: object) -> None:
    """Where the span of a call goes when recording it failed."""


class Recorded:
    """One use of ``integration(...)``/``monitor(...)``/…: enter it, or decorate with it."""

    def __init__(
        self,
        function_name: str,
        kind: SpanKind,
        name: object,
        operation: object = None,
        recorder: Recorder | None = None,
    ) -> None:
        # monitor() alone may go without a name: it then takes the decorated function's.
        unnamed_monitor = function_name == "monitor" and name is None
        if not (isinstance(name, str) and name) and not unnamed_monitor:
            raise TypeError(
                f"watchkeeper.{function_name}() needs {_SUBJECTS[function_name]} name as a "
                f"non-empty string, got {name!r}"
            )
        if operation is not None and not isinstance(operation, str):
            raise TypeError(
                f"watchkeeper.{function_name}()'s operation must be a string or None, "
                f"got {operation!r}"
            )
        self._function_name = function_name
        self.kind = kind
        self.name = name if isinstance(name, str) else None
        self.operation = operation
        self._recorder = recorder
        # The spans of this object's open with-blocks, each with its parent: one object may be
        # entered by many tasks and threads at once (a module-level ``integration("x")``).
        self._entered: dict[ActiveSpan, ActiveSpan | None] = {}

    @property
    def recorder(self) -> Recorder:
        return self._recorder or get_recorder()

    # -- as a context manager -----------------------------------------------------------------

    def __enter__(self) -> ActiveSpan:
        if self.name is None:
            raise TypeError(
                f"watchkeeper.{self._function_name}() used with 'with' needs a name: "
                f'with watchkeeper.{self._function_name}("step name"):'
            )
        parent = current_span.get()
        span = self._open()
        self._entered[span] = parent
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The block's span is current in the context that exits it (each task and thread has
        # its own), whatever other tasks entered or left this object meanwhile. A context that
        # did not enter it (a generator resumed from a copied context, as a thread pool does)
        # has another span current; then the object's latest block is the one ending.
        span = current_span.get()
        entered = self._entered
        try:
            if span is None or span not in entered:
                span, parent = entered.popitem()
            else:
                parent = entered.pop(span)
        except KeyError:
            return  # left more often than entered: nothing of ours to end
        self._close(span, parent, exc)

    @contextmanager
    def _recording(self, current: bool = True) -> Iterator[ActiveSpan]:
        """One call's span, held in locals: a decorator's calls may run concurrently.

        ``current=False`` leaves the span out of the context: a generator's span is made current
        by :func:`_stepped` only while the generator's own code runs.
        """
        parent = current_span.get()
        span = self._open(current)
        try:
            yield span
        except GeneratorExit:
            # The consumer stopped iterating early (a ``break``): that is not a failure.
            self._close(span, parent, None)
            raise
        except BaseException as error:
            self._close(span, parent, error)
            raise
        self._close(span, parent, None)

    def _open(self, current: bool = True) -> ActiveSpan:
        recorder = self.recorder
        name = self.name or ""
        try:
            span = recorder.span(name, self.kind, self.operation)
            return span.__enter__() if current else span
        except Exception as error:
            recorder.report_internal_error(f"opening the span {name!r}", error)
            # Current all the same, so that a with-block's exit finds it (see __exit__).
            span = ActiveSpan(_discard, self.kind, name, self.operation, None)
            return span.__enter__() if current else span

    def _close(
        self, span: ActiveSpan, parent: ActiveSpan | None, error: BaseException | None
    ) -> None:
        try:
            if error is not None:
                span.record_error(error)
            span.end()
            if self.kind is SpanKind.TOOL and parent is not None and parent.kind is SpanKind.AGENT:
                counts = parent.attributes or {}
                counts[attributes.TOOL_CALLS] = counts.get(attributes.TOOL_CALLS, 0) + 1
                counts[attributes.TOOL_SECONDS] = (
                    counts.get(attributes.TOOL_SECONDS, 0.0) + span.duration
                )
                parent.attributes = counts
        except Exception as internal:
            self.recorder.report_internal_error(f"closing the span {self.name!r}", internal)

    def _validate(self, result: object) -> None:
        if self.kind is SpanKind.INTEGRATION and self.name and validators.has(self.name):
            try:
                validators.validate(self.name, result, self.recorder)
            except Exception as error:
                self.recorder.report_internal_error(f"validating {self.name!r}", error)

    # -- as a decorator -----------------------------------------------------------------------

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        if not callable(function):
            raise TypeError(
                f"watchkeeper.{self._function_name}() can only decorate a function, "
                f"got {function!r}"
            )
        if self.name is None:
            named = Recorded(
                self._function_name, self.kind, function.__qualname__, None, self._recorder
            )
            return named(function)
        if inspect.isasyncgenfunction(function):
            return cast(Callable[P, R], self._async_generator(function))
        if inspect.isgeneratorfunction(function):
            return cast(Callable[P, R], self._generator(function))
        if inspect.iscoroutinefunction(function):
            return cast(Callable[P, R], self._coroutine(function))
        return self._function(function)

    def _function(self, function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._recording():
                result = function(*args, **kwargs)
                self._validate(result)
                return result

        return wrapper

    def _coroutine(self, function: Callable[P, Any]) -> Callable[P, Any]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with self._recording():
                result = await function(*args, **kwargs)
                self._validate(result)
                return result

        return wrapper

    def _generator(self, function: Callable[P, Iterator[Any]]) -> Callable[P, Iterator[Any]]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
            with self._recording(current=False) as span:
                generator = cast(Generator[Any, Any, Any], function(*args, **kwargs))
                return (yield from _stepped(generator, span))

        return wrapper

    def _async_generator(
        self, function: Callable[P, AsyncIterator[Any]]
    ) -> Callable[P, AsyncIterator[Any]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Any]:
            with self._recording(current=False) as span:
                generator = cast(AsyncGenerator[Any, Any], function(*args, **kwargs))
                inside = span  # what is current in the generator's own code (see _stepped)
                step: Callable[[Any], Awaitable[Any]] = generator.asend
                value: Any = None
                while True:
                    with _current(inside) as now:
                        try:
                            item = await step(value)
                        except StopAsyncIteration:
                            return
                    inside = now.span
                    try:
                        value, step = (yield item), generator.asend
                    except GeneratorExit:
                        with _current(inside):
                            await generator.aclose()
                        raise
                    except BaseException as error:
                        value, step = error, generator.athrow

        return wrapper


class _Current:
    """The span current inside a generator; whatever its own code left current when it paused."""

    __slots__ = ("span",)

    def __init__(self, span: ActiveSpan) -> None:
        self.span = span


@contextmanager
def _current(span: ActiveSpan) -> Iterator[_Current]:
    """Make ``span`` current for one step of a generator, then give the caller back its own.

    Afterwards ``.span`` is what the step left current (a span the generator opened and holds
    across its ``yield``), which the next step must see again.
    """
    now = _Current(span)
    token = current_span.set(span)
    try:
        yield now
    finally:
        now.span = current_span.get() or span
        current_span.reset(token)


def _stepped(generator: Generator[Any, Any, Any], span: ActiveSpan) -> Generator[Any, Any, Any]:
    """Run ``generator`` with ``span`` current only while its own code runs.

    The caller's code between two steps keeps its own current span, so the spans it opens there
    are not made children of the generator's. (The async wrapper does the same with awaits.)
    """
    inside = span
    step: Callable[[Any], Any] = generator.send
    value: Any = None
    while True:
        with _current(inside) as now:
            try:
                item = step(value)
            except StopIteration as stop:
                return stop.value
        inside = now.span
        try:
            value, step = (yield item), generator.send
        except GeneratorExit:
            with _current(inside):
                generator.close()
            raise
        except BaseException as error:
            value, step = error, generator.throw


def integration(
    name: str, operation: str | None = None, *, recorder: Recorder | None = None
) -> Recorded:
    """An outbound call to an AI service (``with integration("openai", "chat") as call:``)."""
    return Recorded("integration", SpanKind.INTEGRATION, name, operation, recorder)


@overload
def monitor(
    name: Callable[P, R], kind: SpanKind = SpanKind.INTERNAL, *, recorder: Recorder | None = None
) -> Callable[P, R]: ...


@overload
def monitor(
    name: str | None = None, kind: SpanKind = SpanKind.INTERNAL, *, recorder: Recorder | None = None
) -> Recorded: ...


def monitor(
    name: str | Callable[P, R] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    *,
    recorder: Recorder | None = None,
) -> Recorded | Callable[P, R]:
    """Any function, coroutine or generator of yours: ``@watchkeeper.monitor`` names the span
    after the function, ``@watchkeeper.monitor("render")`` or ``with monitor("render"):`` so."""
    if not isinstance(kind, SpanKind):
        raise TypeError(f"watchkeeper.monitor()'s kind must be a SpanKind, got {kind!r}")
    if callable(name):
        return Recorded("monitor", kind, None, None, recorder)(name)
    return Recorded("monitor", kind, name, None, recorder)


def tool(name: str, *, recorder: Recorder | None = None) -> Recorded:
    """A tool an agent calls; counted on the enclosing agent span."""
    return Recorded("tool", SpanKind.TOOL, name, None, recorder)


def agent(name: str, *, recorder: Recorder | None = None) -> Recorded:
    """An agent run; its span gets ``tool_calls`` and ``tool_seconds`` from its tools."""
    return Recorded("agent", SpanKind.AGENT, name, None, recorder)
