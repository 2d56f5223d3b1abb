"""What the LLM client integrations share: one call's span, and patching a client's methods.

Each integration (openai, anthropic) says how to start a call from the method's arguments and
how to read the result; this module does the rest the same way for all of them: the span is
open while the client sends (so the HTTP layer propagates it and records nothing itself), an
exception from the client is recorded and re-raised unchanged, and a streamed result keeps its
type: only its iterator is wrapped, and the span ends when the stream is exhausted or closed.
A stream the caller closes or abandons before its end (a client that went away from a relayed
stream) and a call whose task is cancelled end *cancelled*, not failed: the provider did
nothing wrong, so its error rate and health must not answer for it.
Watchkeeper's own failures are contained and never reach the caller.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from watchkeeper.instrumentation.hosts import HostMap
from watchkeeper.instrumentation.propagation import recorded_by, when_closed
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.recording.attributes import FINISH_REASON, STATUS_CODE, TIME_TO_FIRST_TOKEN
from watchkeeper.recording.recorder import Recorder

Observer = Callable[["LLMCall", Any], bool]
"""Reads one streamed item into the call; returns whether the caller should see the item."""


class LLMCall:
    """One API call being recorded."""

    def __init__(self, recorder: Recorder, name: str, operation: str, model: Any) -> None:
        self.recorder = recorder
        self.span = recorder.span(name, SpanKind.INTEGRATION, operation)
        self._started = time.perf_counter()
        self._reading = False
        self.usage_requested = False
        """Watchkeeper asked for usage the caller did not: keep it from the caller."""
        if isinstance(model, str):
            self.span.usage(model=model)

    def usage(self, model: Any, input_tokens: Any, output_tokens: Any) -> None:
        self.span.usage(
            model if isinstance(model, str) and model else None,
            input_tokens if isinstance(input_tokens, int) else None,
            output_tokens if isinstance(output_tokens, int) else None,
        )

    def first_token(self) -> None:
        attributes = self.span.attributes
        if attributes is None or TIME_TO_FIRST_TOKEN not in attributes:
            self.span.set_attribute(TIME_TO_FIRST_TOKEN, time.perf_counter() - self._started)

    def finish_reason(self, reason: Any) -> None:
        if reason:
            self.span.set_attribute(FINISH_REASON, str(reason))

    def api_error(self, error_type: str, message: str) -> None:
        """An error the API reported inside a successful response (e.g. a failed stream)."""
        self.span.set_status(SpanStatus.ERROR)
        self.span.error_type = error_type
        self.span.error_message = message

    def fail(self, error: BaseException) -> None:
        try:
            self.span.record_error(error)
            status = getattr(error, "status_code", None)
            if isinstance(status, int):
                self.span.set_attribute(STATUS_CODE, status)
            self.span.end()
        except Exception as internal:
            self.recorder.report_internal_error("recording an AI call's error", internal)

    @contextmanager
    def sending(self) -> Iterator[None]:
        """While the client sends: the span is current for the HTTP layer, and an exception
        from the client fails the call and goes on to the caller unchanged."""
        try:
            with recorded_by(self.span):
                yield
        except BaseException as error:
            self.fail(error)
            raise

    def end(self) -> None:
        self.span.end()

    def _closed(self) -> None:
        # Closing the response while the stream is reading means the stream is ending, with
        # its outcome (perhaps an error) about to reach the stream wrapper, which ends the span.
        # Closed between reads, before the end, the caller gave up on the rest of the stream.
        if not self._reading:
            self.span.cancel()

    def observe_stream(self, stream: Any, observe: Observer) -> None:
        """Record the items of ``stream`` (an SDK stream object) as the caller reads them."""
        iterator = getattr(stream, "_iterator", None)
        response = getattr(stream, "response", None)
        if iterator is None or response is None:
            self.end()
            return
        if hasattr(iterator, "__anext__"):
            stream._iterator = self._observed_async(iterator, observe)
        else:
            stream._iterator = self._observed(iterator, observe)
        when_closed(response, self._closed)

    def _observe(self, observe: Observer, item: Any) -> bool:
        try:
            return observe(self, item)
        except Exception as error:
            self.recorder.report_internal_error("recording a streamed AI response", error)
            return True

    def _observed(self, iterator: Iterator[Any], observe: Observer) -> Iterator[Any]:
        try:
            while True:
                self._reading = True
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                finally:
                    self._reading = False
                if self._observe(observe, item):
                    yield item
        except GeneratorExit:
            try:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            finally:
                self.span.cancel()
            raise
        except BaseException as error:
            self.fail(error)
            raise
        self.end()

    async def _observed_async(
        self, iterator: AsyncIterator[Any], observe: Observer
    ) -> AsyncIterator[Any]:
        try:
            while True:
                self._reading = True
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    break
                finally:
                    self._reading = False
                if self._observe(observe, item):
                    yield item
        except GeneratorExit:
            try:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                # Even when closing is itself interrupted (the caller's task cancelled).
                self.span.cancel()
            raise
        except BaseException as error:
            self.fail(error)
            raise
        self.end()


class CallHandler(Protocol):
    """How one client method is recorded."""

    operation: str

    def prepare(self, call: LLMCall, kwargs: dict[str, Any]) -> None:
        """Adjust the call's arguments (the caller's own copy) before the client sends it."""

    def complete(self, call: LLMCall, result: Any) -> None:
        """Read ``result`` into the call and end it, or arrange for its stream to end it."""


class Integration:
    """The process-wide state of one instrumented client library."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.recorder: Recorder | None = None
        self.hosts = HostMap()

    def configure(self, recorder: Recorder | None) -> None:
        self.recorder = recorder
        self.hosts = HostMap(recorder.settings.integration_hosts) if recorder else HostMap()

    def call(self, resource: Any, operation: str, model: Any) -> LLMCall | None:
        """Open a call named after the provider the client is pointed at, else the library.

        The openai client is often pointed at other providers (Groq, Together, a gateway);
        a known host names them, and anything else (a proxy, a local server) is this library.
        """
        recorder = self.recorder
        if recorder is None:
            return None
        try:
            base_url = getattr(getattr(resource, "_client", None), "base_url", None)
            host = getattr(base_url, "host", None)
            name = (self.hosts.lookup(host) if isinstance(host, str) else None) or self.name
            return LLMCall(recorder, name, operation, model)
        except Exception as error:
            recorder.report_internal_error(f"recording a {self.name} call", error)
            return None

    def begin(self, handler: CallHandler, resource: Any, kwargs: dict[str, Any]) -> LLMCall | None:
        call = self.call(resource, handler.operation, kwargs.get("model"))
        if call is None:
            return None
        try:
            handler.prepare(call, kwargs)
        except Exception as error:
            call.recorder.report_internal_error(f"recording a {self.name} call", error)
        return call

    def complete(self, handler: CallHandler, call: LLMCall, result: Any) -> None:
        try:
            handler.complete(call, result)
        except Exception as error:
            call.recorder.report_internal_error(f"recording a {self.name} response", error)

    def wrap(self, handler: CallHandler) -> Callable[[Any], Any]:
        """A patch for a synchronous client method."""

        def patch(original: Any) -> Any:
            @functools.wraps(original)
            def method(resource: Any, *args: Any, **kwargs: Any) -> Any:
                call = self.begin(handler, resource, kwargs)
                if call is None:
                    return original(resource, *args, **kwargs)
                with call.sending():
                    result = original(resource, *args, **kwargs)
                self.complete(handler, call, result)
                return result

            return method

        return patch

    def wrap_async(self, handler: CallHandler) -> Callable[[Any], Any]:
        """A patch for an asynchronous client method."""

        def patch(original: Any) -> Any:
            @functools.wraps(original)
            async def method(resource: Any, *args: Any, **kwargs: Any) -> Any:
                call = self.begin(handler, resource, kwargs)
                if call is None:
                    return await original(resource, *args, **kwargs)
                with call.sending():
                    result = await original(resource, *args, **kwargs)
                self.complete(handler, call, result)
                return result

            return method

        return patch
