"""A local stand-in for the OpenAI and Anthropic APIs, speaking their real wire formats.

Point the official clients at :attr:`FakeAIServer.openai_base_url` or
:attr:`FakeAIServer.base_url` to test (or demonstrate) an app's AI calls without network, keys
or cost. Latency, token counts and failures are configurable; replies, ids and injected failures
come from one random generator seeded by ``seed``, so the same requests in the same order get
the same answers.

    with FakeAIServer(latency=0.2, output_tokens=20) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

START_TIMEOUT = 10.0
RECEIVED_LIMIT = 1_000
CHARACTERS_PER_TOKEN = 4
WORDS = (
    "the", "answer", "depends", "on", "your", "question", "and", "here", "is", "a", "short",
    "summary", "of", "what", "matters", "most", "for", "this", "case", "we", "can", "also",
    "consider", "next", "steps", "with", "care", "today",
)  # fmt: skip

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_ANTHROPIC_ERROR_TYPES = {**_OPENAI_ERROR_TYPES, 500: "api_error", 529: "overloaded_error"}


@dataclass(frozen=True)
class FakeAIBehaviour:
    """How the fake answers. Times are in seconds; ``jitter`` varies latency by ± that fraction.

    ``input_tokens`` of ``None`` counts one token per four characters of the prompt's strings
    (message roles included, as providers count them too).
    A fraction ``failure_rate`` of requests fail with ``failure_status``, in the provider's
    error format.
    """

    latency: float = 0.0
    token_interval: float = 0.0
    jitter: float = 0.0
    input_tokens: int | None = None
    output_tokens: int = 12
    embedding_dimensions: int = 8
    failure_rate: float = 0.0
    failure_status: int = 500

    def __post_init__(self) -> None:
        if self.latency < 0 or self.token_interval < 0:
            raise ValueError("latency and token_interval must not be negative")
        if not 0 <= self.jitter <= 1 or not 0 <= self.failure_rate <= 1:
            raise ValueError("jitter and failure_rate must be between 0 and 1")
        if self.output_tokens < 1 or self.embedding_dimensions < 1:
            raise ValueError("output_tokens and embedding_dimensions must be at least 1")
        if self.input_tokens is not None and self.input_tokens < 1:
            raise ValueError("input_tokens must be at least 1")
        if not 400 <= self.failure_status <= 599:
            raise ValueError("failure_status must be an HTTP error status (400-599)")


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the fake received, for tests to inspect (e.g. propagated trace headers)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any = field(repr=False)


@dataclass(frozen=True)
class _Reply:
    model: str
    words: list[str]
    input_tokens: int
    truncated: bool

    @property
    def text(self) -> str:
        return "".join(self.words)


class FakeAI:
    """The fake's Starlette application and its state; :class:`FakeAIServer` serves it."""

    def __init__(self, behaviour: FakeAIBehaviour, seed: int = 0) -> None:
        self.behaviour = behaviour
        self._random = random.Random(seed)
        self._received: deque[ReceivedRequest] = deque(maxlen=RECEIVED_LIMIT)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
            ]
        )

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    # -- shared ------------------------------------------------------------------------------

    async def _accept(self, request: Request, anthropic: bool) -> dict[str, Any] | Response:
        """The request's JSON body, or the error response the fake answers with instead."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = None
        with self._lock:
            self._received.append(
                ReceivedRequest(request.method, request.url.path, dict(request.headers), body)
            )
        behaviour = self.behaviour
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "the body must be a JSON object naming a model", anthropic)
        if anthropic and not isinstance(body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required", anthropic)
        if behaviour.failure_rate and self._random.random() < behaviour.failure_rate:
            await asyncio.sleep(self._latency())
            return _error(behaviour.failure_status, "injected failure", anthropic)
        return body

    def _latency(self) -> float:
        behaviour = self.behaviour
        spread = behaviour.jitter * (2 * self._random.random() - 1)
        return behaviour.latency * (1 + spread)

    def _id(self, prefix: str) -> str:
        return f"{prefix}{self._random.getrandbits(96):024x}"

    def _reply(self, body: dict[str, Any], limit: Any) -> _Reply:
        behaviour = self.behaviour
        count = behaviour.output_tokens
        truncated = isinstance(limit, int) and 0 < limit < count
        if truncated:
            count = limit
        words = [self._random.choice(WORDS) for _ in range(count)]
        words = [words[0].capitalize(), *(f" {word}" for word in words[1:])]
        input_tokens = behaviour.input_tokens or _count_tokens(
            [body.get("messages"), body.get("input"), body.get("system"), body.get("instructions")]
        )
        return _Reply(body["model"], words, input_tokens, truncated)

    async def _stream(self, events: AsyncIterator[str], request_id: str) -> Response:
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"x-request-id": request_id, "request-id": request_id},
        )

    # -- OpenAI chat completions --------------------------------------------------------------

    async def _chat_completions(self, request: Request) -> Response:
        body = await self._accept(request, anthropic=False)
        if isinstance(body, Response):
            return body
        reply = self._reply(body, body.get("max_completion_tokens") or body.get("max_tokens"))
        completion_id = self._id("chatcmpl-")
        usage = {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": len(reply.words),
            "total_tokens": reply.input_tokens + len(reply.words),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        finish_reason = "length" if reply.truncated else "stop"
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            events = self._chat_events(completion_id, reply, finish_reason, usage, include_usage)
            return await self._stream(events, completion_id)
        await asyncio.sleep(self._latency())
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": reply.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply.text,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_watchkeeper",
            },
            headers={"x-request-id": completion_id},
        )

    async def _chat_events(
        self,
        completion_id: str,
        reply: _Reply,
        finish_reason: str,
        usage: dict[str, Any],
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": reply.model,
                "service_tier": "default",
                "system_fingerprint": "fp_watchkeeper",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        yield chunk(choice({"role": "assistant", "content": "", "refusal": None}))
        await asyncio.sleep(self._latency())
        for number, word in enumerate(reply.words):
            if number:
                await asyncio.sleep(self.behaviour.token_interval)
            yield chunk(choice({"content": word}))
        yield chunk(choice({}, finish_reason))
        if include_usage:
            yield chunk([], usage)
        yield "data: [DONE]\n\n"

    # -- OpenAI responses ---------------------------------------------------------------------

    async def _responses(self, request: Request) -> Response:
        body = await self._accept(request, anthropic=False)
        if isinstance(body, Response):
            return body
        reply = self._reply(body, body.get("max_output_tokens"))
        response_id, message_id = self._id("resp_"), self._id("msg_")
        if body.get("stream"):
            events = self._response_events(body, reply, response_id, message_id)
            return await self._stream(events, response_id)
        await asyncio.sleep(self._latency())
        return JSONResponse(
            _response_object(body, reply, response_id, message_id, done=True),
            headers={"x-request-id": response_id},
        )

    async def _response_events(
        self, body: dict[str, Any], reply: _Reply, response_id: str, message_id: str
    ) -> AsyncIterator[str]:
        sequence = 0

        def event(kind: str, **data: Any) -> str:
            nonlocal sequence
            payload = {"type": kind, "sequence_number": sequence, **data}
            sequence += 1
            return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

        pending = _response_object(body, reply, response_id, message_id, done=False)
        where = {"item_id": message_id, "output_index": 0, "content_index": 0}
        yield event("response.created", response=pending)
        yield event("response.in_progress", response=pending)
        item = {
            "id": message_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        yield event("response.output_item.added", output_index=0, item=item)
        part = {"type": "output_text", "text": "", "annotations": []}
        yield event("response.content_part.added", **where, part=part)
        await asyncio.sleep(self._latency())
        for number, word in enumerate(reply.words):
            if number:
                await asyncio.sleep(self.behaviour.token_interval)
            yield event("response.output_text.delta", **where, delta=word, logprobs=[])
        yield event("response.output_text.done", **where, text=reply.text, logprobs=[])
        part = {"type": "output_text", "text": reply.text, "annotations": []}
        yield event("response.content_part.done", **where, part=part)
        done = _response_object(body, reply, response_id, message_id, done=True)
        yield event("response.output_item.done", output_index=0, item=done["output"][0])
        final = "response.incomplete" if reply.truncated else "response.completed"
        yield event(final, response=done)

    # -- OpenAI embeddings --------------------------------------------------------------------

    async def _embeddings(self, request: Request) -> Response:
        body = await self._accept(request, anthropic=False)
        if isinstance(body, Response):
            return body
        given = body.get("input")
        inputs = given if isinstance(given, list) else [given]
        dimensions = body.get("dimensions") or self.behaviour.embedding_dimensions
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, _ in enumerate(inputs):
            vector = [self._random.gauss(0, 1) for _ in range(dimensions)]
            norm = math.sqrt(sum(value * value for value in vector)) or 1.0
            unit = [value / norm for value in vector]
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *unit)).decode()
                if as_base64
                else unit
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = self.behaviour.input_tokens or _count_tokens(inputs)
        await asyncio.sleep(self._latency())
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- Anthropic messages -------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        body = await self._accept(request, anthropic=True)
        if isinstance(body, Response):
            return body
        reply = self._reply(body, body["max_tokens"])
        message_id = self._id("msg_")
        stop_reason = "max_tokens" if reply.truncated else "end_turn"
        if body.get("stream"):
            events = self._message_events(reply, message_id, stop_reason)
            return await self._stream(events, message_id)
        await asyncio.sleep(self._latency())
        message = _message_object(reply, message_id, stop_reason, len(reply.words))
        message["content"] = [{"type": "text", "text": reply.text, "citations": None}]
        return JSONResponse(message, headers={"request-id": message_id})

    async def _message_events(
        self, reply: _Reply, message_id: str, stop_reason: str
    ) -> AsyncIterator[str]:
        def event(kind: str, **data: Any) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        start = _message_object(reply, message_id, None, 1)
        yield event("message_start", message=start)
        block = {"type": "text", "text": "", "citations": None}
        yield event("content_block_start", index=0, content_block=block)
        yield event("ping")
        await asyncio.sleep(self._latency())
        for number, word in enumerate(reply.words):
            if number:
                await asyncio.sleep(self.behaviour.token_interval)
            delta = {"type": "text_delta", "text": word}
            yield event("content_block_delta", index=0, delta=delta)
        yield event("content_block_stop", index=0)
        usage = {
            "input_tokens": reply.input_tokens,
            "output_tokens": len(reply.words),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        ending = {"stop_reason": stop_reason, "stop_sequence": None}
        yield event("message_delta", delta=ending, usage=usage)
        yield event("message_stop")


def _count_tokens(values: list[Any]) -> int:
    characters = 0
    pending = list(values)
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            characters += len(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return max(1, math.ceil(characters / CHARACTERS_PER_TOKEN))


def _error(status: int, message: str, anthropic: bool) -> Response:
    if anthropic:
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def _response_object(
    body: dict[str, Any], reply: _Reply, response_id: str, message_id: str, done: bool
) -> dict[str, Any]:
    status = ("incomplete" if reply.truncated else "completed") if done else "in_progress"
    message = {
        "id": message_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
    }
    usage = {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": len(reply.words),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + len(reply.words),
    }
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": reply.model,
        "output": [message] if done else [],
        "usage": usage if done else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and reply.truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
    }


def _message_object(
    reply: _Reply, message_id: str, stop_reason: str | None, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


class FakeAIServer:
    """Serves :class:`FakeAI` with uvicorn on 127.0.0.1, on a free port, in a daemon thread."""

    def __init__(self, *, seed: int = 0, **behaviour: Any) -> None:
        self.fake = FakeAI(FakeAIBehaviour(**behaviour), seed)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted connections inherit this: without it, a response's headers and body sent
        # in two writes meet delayed acknowledgement and every call takes 40 ms longer.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self.fake.app, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="watchkeeper-fake-ai",
            daemon=True,
        )

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI`` (the anthropic client takes :attr:`base_url`)."""
        return f"{self.base_url}/v1"

    @property
    def behaviour(self) -> FakeAIBehaviour:
        return self.fake.behaviour

    @property
    def received(self) -> list[ReceivedRequest]:
        """The most recent requests, oldest first."""
        return self.fake.received

    def configure(self, **changes: Any) -> None:
        """Change how the fake answers from the next request on (same names as the constructor)."""
        self.fake.behaviour = replace(self.fake.behaviour, **changes)

    def start(self) -> FakeAIServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake AI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT)
        self._socket.close()

    def __enter__(self) -> FakeAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
