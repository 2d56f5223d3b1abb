"""Calls made with the official openai client: chat completions, responses and embeddings.

The resource classes are patched, so every client the app creates is recorded without wrapping
calls. Streamed chat completions only report usage when asked to; when the caller did not say,
Watchkeeper asks (``stream_options.include_usage``) and keeps the extra usage chunk from the
caller, so the stream reads exactly as it would have.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.instrumentation.llm import Integration, LLMCall
from watchkeeper.instrumentation.patching import Patches
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder

INSTALL_HINT = "instrument_openai() needs the openai package: pip install 'watchkeeper[openai]'"

_integration = Integration("openai")
_patches = Patches("openai")

_OUTPUT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
    }
)
_FINAL_RESPONSES = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _is_unset(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit")


class _ChatCompletions:
    operation = "chat.completions"

    def __init__(self, streams: tuple[type, ...]) -> None:
        self._streams = streams

    def prepare(self, call: LLMCall, kwargs: dict[str, Any]) -> None:
        if kwargs.get("stream") is not True:
            return
        options = kwargs.get("stream_options")
        if options is None or _is_unset(options):
            kwargs["stream_options"] = {"include_usage": True}
            call.usage_requested = True
        elif isinstance(options, dict) and "include_usage" not in options:
            kwargs["stream_options"] = {**options, "include_usage": True}
            call.usage_requested = True

    def complete(self, call: LLMCall, result: Any) -> None:
        if isinstance(result, self._streams):
            call.observe_stream(result, _chat_chunk)
            return
        if getattr(result, "object", None) == "chat.completion":
            usage = result.usage
            call.usage(
                result.model,
                getattr(usage, "prompt_tokens", None),
                getattr(usage, "completion_tokens", None),
            )
            if result.choices:
                call.finish_reason(result.choices[0].finish_reason)
        call.end()


def _chat_chunk(call: LLMCall, chunk: Any) -> bool:
    for choice in chunk.choices or ():
        delta = choice.delta
        if delta is not None and (delta.content or delta.tool_calls or delta.refusal):
            call.first_token()
        call.finish_reason(choice.finish_reason)
    usage = chunk.usage
    if usage is not None:
        call.usage(chunk.model, usage.prompt_tokens, usage.completion_tokens)
        return not (call.usage_requested and not chunk.choices)
    return True


class _Responses:
    operation = "responses"

    def __init__(self, streams: tuple[type, ...]) -> None:
        self._streams = streams

    def prepare(self, call: LLMCall, kwargs: dict[str, Any]) -> None:
        """Responses streams report usage in their final event without being asked."""

    def complete(self, call: LLMCall, result: Any) -> None:
        if isinstance(result, self._streams):
            call.observe_stream(result, _response_event)
            return
        if getattr(result, "object", None) == "response":
            _read_response(call, result)
        call.end()


def _response_event(call: LLMCall, event: Any) -> bool:
    kind = getattr(event, "type", None)
    if kind in _OUTPUT_DELTAS:
        call.first_token()
    elif kind in _FINAL_RESPONSES:
        _read_response(call, event.response)
    elif kind == "error":
        call.api_error(str(event.code or "error"), str(event.message))
    return True


def _read_response(call: LLMCall, response: Any) -> None:
    usage = response.usage
    call.usage(
        response.model,
        getattr(usage, "input_tokens", None),
        getattr(usage, "output_tokens", None),
    )
    details = response.incomplete_details
    call.finish_reason(getattr(details, "reason", None) or response.status)
    error = response.error
    if response.status == "failed" and error is not None:
        call.api_error(str(error.code), str(error.message))


class _Embeddings:
    operation = "embeddings"

    def prepare(self, call: LLMCall, kwargs: dict[str, Any]) -> None:
        """Embedding requests are sent as given."""

    def complete(self, call: LLMCall, result: Any) -> None:
        usage = getattr(result, "usage", None)
        if usage is not None:
            call.usage(result.model, usage.prompt_tokens, None)
        call.end()


def instrument_openai(recorder: Recorder | None = None) -> None:
    """Record every call made with the openai client (sync, async and streamed).

    Costs are added on the flush worker from genai-prices and the ``model_prices`` setting.
    Calling again only changes the recorder.
    """
    try:
        import openai  # noqa: PLC0415 - an optional dependency, needed only when instrumenting
        from openai.resources.chat.completions.completions import (  # noqa: PLC0415
            AsyncCompletions,
            Completions,
        )
        from openai.resources.embeddings import AsyncEmbeddings, Embeddings  # noqa: PLC0415
        from openai.resources.responses.responses import (  # noqa: PLC0415
            AsyncResponses,
            Responses,
        )

        from watchkeeper.instrumentation.pricing import install_pricing  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    recorder = recorder or get_recorder()
    install_pricing(recorder)
    _integration.configure(recorder)
    if _patches.applied:
        return
    streams = (openai.Stream, openai.AsyncStream)
    chat, responses, embeddings = _ChatCompletions(streams), _Responses(streams), _Embeddings()
    _patches.apply(Completions, "create", _integration.wrap(chat))
    _patches.apply(AsyncCompletions, "create", _integration.wrap_async(chat))
    _patches.apply(Responses, "create", _integration.wrap(responses))
    _patches.apply(AsyncResponses, "create", _integration.wrap_async(responses))
    _patches.apply(Embeddings, "create", _integration.wrap(embeddings))
    _patches.apply(AsyncEmbeddings, "create", _integration.wrap_async(embeddings))


def uninstrument_openai() -> None:
    """Put the openai client's original methods back."""
    _patches.restore()
    _integration.configure(None)
