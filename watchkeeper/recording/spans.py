"""Spans as the caller opens and closes them: the request-path half of recording.

An :class:`ActiveSpan` *is* the :class:`Span` that gets enqueued, so closing one allocates nothing
more. The current span lives in a context variable, which gives children their trace, parent and
user/organisation/session without any argument passing, across threads and asyncio tasks.
"""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from watchkeeper.model.events import Attributes, Frames, LogRecord, Span, SpanKind, SpanStatus
from watchkeeper.model.ids import new_trace_id, span_ids

ERROR_MESSAGE_LIMIT = 2_000
FRAMES_LIMIT = 64
"""Innermost frames kept of a failed span's stack: what grouping reads, bounded."""

current_span: ContextVar[ActiveSpan | None] = ContextVar("watchkeeper_current_span", default=None)

_perf_counter = time.perf_counter
_wall_clock = time.time


class ActiveSpan(Span):
    """A span being timed. Use as a context manager, or call :meth:`end` yourself."""

    _token: Token[ActiveSpan | None] | None = None
    _ended = False

    def __init__(
        self,
        submit: Callable[[Span], None],
        kind: SpanKind,
        name: str,
        operation: str | None,
        parent: ActiveSpan | None,
        trace_id: int = 0,
        parent_id: int = 0,
    ) -> None:
        # Only what this span has is stored; everything else reads the class-level default.
        # Fields are set directly rather than through Span.__init__: this runs on every request.
        self._submit = submit
        self.kind = kind
        self.name = name
        if operation is not None:
            self.operation = operation
        self.start = start = _wall_clock()
        self.span_id = next(span_ids)
        if parent is not None:
            self.trace_id = parent.trace_id
            self.parent_id = parent.span_id
            # Read once each: a parent's identity is usually unset, and then so is ours.
            if (user_id := parent.user_id) is not None:
                self.user_id = user_id
            if (org_id := parent.org_id) is not None:
                self.org_id = org_id
            if (session_id := parent.session_id) is not None:
                self.session_id = session_id
        else:
            self.trace_id = trace_id or new_trace_id(start)
            if parent_id:
                self.parent_id = parent_id
        self._perf_start = _perf_counter()

    def __enter__(self) -> ActiveSpan:
        self._token = current_span.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The closing logic lives here rather than in end(): a with-block, the common way to
        # close a span, then costs one call, not two.
        if self._ended:
            return
        self._ended = True
        self.duration = _perf_counter() - self._perf_start
        if exc is not None:
            self.record_error(exc)
        token = self._token
        if token is not None:
            self._token = None
            # Ended in another context than it was entered in (e.g. a generator finished by
            # another task): that context's variable is not ours to reset.
            # try/except, not contextlib.suppress: this runs for every span, and suppress costs
            # a context manager object and two calls.
            try:  # noqa: SIM105
                current_span.reset(token)
            except ValueError:
                pass
        self._submit(self)

    def end(self) -> None:
        """Stop the clock and enqueue the span; a second call does nothing."""
        self.__exit__(None, None, None)

    def elapsed(self) -> float:
        """Seconds since the span started (e.g. for a time-to-first-token attribute)."""
        return _perf_counter() - self._perf_start

    def record_error(self, error: BaseException) -> None:
        """Record what ended the work: a failure, or a cancellation, which is not one."""
        if isinstance(error, CancelledError):
            # The caller stopped waiting (a client gone, a timeout): no fault of this work's,
            # and not something its error rate or health should answer for.
            self.status = SpanStatus.CANCELLED
            return
        self.status = SpanStatus.ERROR
        self.error_type = type(error).__qualname__
        self.error_message = str(error)[:ERROR_MESSAGE_LIMIT]
        if (frames := stack_frames(error.__traceback__)) is not None:
            self.frames = frames

    def cancel(self) -> None:
        """End the span as cancelled by its caller, unless it has ended already."""
        if not self._ended:
            self.status = SpanStatus.CANCELLED
            self.__exit__(None, None, None)

    def set_status(self, status: SpanStatus) -> None:
        self.status = status

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = value

    def set_identity(
        self,
        user_id: str | None = None,
        org_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Attach who this work was for; children opened afterwards inherit it."""
        if user_id is not None:
            self.user_id = user_id
        if org_id is not None:
            self.org_id = org_id
        if session_id is not None:
            self.session_id = session_id

    def usage(
        self,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
    ) -> None:
        """Record an AI call's model, token counts and cost in US dollars (``None``: unknown)."""
        if model is not None:
            self.model = model
        if input_tokens is not None:
            self.input_tokens = input_tokens
        if output_tokens is not None:
            self.output_tokens = output_tokens
        if cost is not None:
            self.cost = cost


def stack_frames(traceback: TracebackType | None) -> Frames | None:
    """(module, function) of each frame from where an exception was caught to where it was
    raised, innermost last; only names are kept, so no frame (nor its locals) outlives this."""
    frames: list[tuple[str, str]] = []
    while traceback is not None:
        frame = traceback.tb_frame
        frames.append((str(frame.f_globals.get("__name__", "?")), frame.f_code.co_name))
        traceback = traceback.tb_next
    return tuple(frames[-FRAMES_LIMIT:]) if frames else None


def log_here(
    time: float,
    level: int,
    logger: str,
    message: str,
    attributes: Attributes | None = None,
    exception_type: str | None = None,
    exception: str | None = None,
    frames: Frames | None = None,
    fingerprint: str | None = None,
) -> LogRecord:
    """A log record tied to the current span, if any: its trace, span and identity."""
    active = current_span.get()
    if active is None:
        return LogRecord(
            time,
            level,
            logger,
            message,
            attributes=attributes,
            exception_type=exception_type,
            exception=exception,
            frames=frames,
            fingerprint=fingerprint,
        )
    return LogRecord(
        time,
        level,
        logger,
        message,
        active.trace_id,
        active.span_id,
        active.user_id,
        active.org_id,
        attributes,
        active.session_id,
        exception_type,
        exception,
        frames,
        fingerprint,
    )
