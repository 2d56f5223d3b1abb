"""Calls made with the official anthropic client: ``messages.create`` and ``messages.stream``.

``messages.stream()`` does not go through ``create``: it returns a manager that sends the request
when entered. The manager's request is wrapped, so the span starts when the request is sent and
the raw event stream the helper reads is recorded like ``create(stream=True)``.
"""

from __future__ import annotations

import functools
from typing import Any

from watchkeeper.instrumentation.llm import Integration, LLMCall
from watchkeeper.instrumentation.patching import Patches
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder

INSTALL_HINT = (
    "instrument_anthropic() needs the anthropic package: pip install 'watchkeeper[anthropic]'"
)
OPERATION = "messages"

_integration = Integration("anthropic")
_patches = Patches("anthropic")


class _Messages:
    operation = OPERATION

    def __init__(self, streams: tuple[type, ...]) -> None:
        self._streams = streams

    def prepare(self, call: LLMCall, kwargs: dict[str, Any]) -> None:
        """Anthropic streams always report usage; requests are sent as given."""

    def complete(self, call: LLMCall, result: Any) -> None:
        if isinstance(result, self._streams):
            call.observe_stream(result, _message_event)
            return
        if getattr(result, "type", None) == "message":
            usage = result.usage
            call.usage(result.model, usage.input_tokens, usage.output_tokens)
            call.finish_reason(result.stop_reason)
        call.end()


def _message_event(call: LLMCall, event: Any) -> bool:
    kind = getattr(event, "type", None)
    if kind == "content_block_delta":
        call.first_token()
    elif kind == "message_start":
        message = event.message
        call.usage(message.model, message.usage.input_tokens, message.usage.output_tokens)
    elif kind == "message_delta":
        # The delta's counts are cumulative totals for the message so far.
        usage = event.usage
        call.usage(None, getattr(usage, "input_tokens", None), usage.output_tokens)
        call.finish_reason(event.delta.stop_reason)
    return True


def _wrap_stream(handler: _Messages, request_attribute: str, is_async: bool) -> Any:
    def patch(original: Any) -> Any:
        @functools.wraps(original)
        def stream(resource: Any, *args: Any, **kwargs: Any) -> Any:
            manager = original(resource, *args, **kwargs)
            request = getattr(manager, request_attribute, None)
            call_recorded = _recorded_async if is_async else _recorded
            if request is None:
                _report(AttributeError(f"stream manager has no {request_attribute}"))
            else:
                recorded = call_recorded(handler, resource, kwargs.get("model"), request)
                setattr(manager, request_attribute, recorded)
            return manager

        return stream

    return patch


def _recorded(handler: _Messages, resource: Any, model: Any, request: Any) -> Any:
    def send() -> Any:
        call = _integration.call(resource, OPERATION, model)
        if call is None:
            return request()
        with call.sending():
            raw_stream = request()
        _integration.complete(handler, call, raw_stream)
        return raw_stream

    return send


def _recorded_async(handler: _Messages, resource: Any, model: Any, request: Any) -> Any:
    # The async manager holds the request as an awaitable, sent when the manager is entered.
    async def send() -> Any:
        call = _integration.call(resource, OPERATION, model)
        if call is None:
            return await request
        with call.sending():
            raw_stream = await request
        _integration.complete(handler, call, raw_stream)
        return raw_stream

    return send()


def _report(error: Exception) -> None:
    recorder = _integration.recorder
    if recorder is not None:
        recorder.report_internal_error("recording an anthropic stream", error)


def instrument_anthropic(recorder: Recorder | None = None) -> None:
    """Record every call made with the anthropic client (sync, async and streamed).

    Costs are added on the flush worker from genai-prices and the ``model_prices`` setting.
    Calling again only changes the recorder.
    """
    try:
        import anthropic  # noqa: PLC0415 - an optional dependency, needed only when instrumenting
        from anthropic.resources.messages.messages import (  # noqa: PLC0415
            AsyncMessages,
            Messages,
        )

        from watchkeeper.instrumentation.pricing import install_pricing  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    recorder = recorder or get_recorder()
    install_pricing(recorder)
    _integration.configure(recorder)
    if _patches.applied:
        return
    messages = _Messages((anthropic.Stream, anthropic.AsyncStream))
    _patches.apply(Messages, "create", _integration.wrap(messages))
    _patches.apply(AsyncMessages, "create", _integration.wrap_async(messages))
    _patches.apply(
        Messages, "stream", _wrap_stream(messages, "_MessageStreamManager__api_request", False)
    )
    _patches.apply(
        AsyncMessages,
        "stream",
        _wrap_stream(messages, "_AsyncMessageStreamManager__api_request", True),
    )


def uninstrument_anthropic() -> None:
    """Put the anthropic client's original methods back."""
    _patches.restore()
    _integration.configure(None)
