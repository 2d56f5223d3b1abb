import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Iterator

import genai_prices
import openai
import pytest
from openai.resources.chat.completions.completions import Completions
from openai.types.chat import ChatCompletionMessageParam

from tests.instrumentation.ai_support import (
    integration_spans,
    last_request,
    traceparent_of,
)
from watchkeeper.instrumentation.httpx import instrument_httpx, uninstrument_httpx
from watchkeeper.instrumentation.openai import instrument_openai, uninstrument_openai
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.plugin import RecorderUnderTest

MODEL = "gpt-4o-mini"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What should I plant in April?"}
]
INPUT_TOKENS = 40
OUTPUT_TOKENS = 12


def expected_cost(model: str, input_tokens: int, output_tokens: int | None) -> float:
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return float(genai_prices.calc_price(usage, model, provider_id="openai").total_price)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAIServer]:
    with FakeAIServer(
        seed=3,
        latency=0.03,
        token_interval=0.002,
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
    ) as server:
        yield server


@pytest.fixture
def recorder(watchkeeper_recorder: RecorderUnderTest) -> Iterator[RecorderUnderTest]:
    instrument_httpx(watchkeeper_recorder)
    instrument_openai(watchkeeper_recorder)
    try:
        yield watchkeeper_recorder
    finally:
        uninstrument_openai()
        uninstrument_httpx()


@pytest.fixture
def client(server: FakeAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_client(server: FakeAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0)


def test_chat_completion_is_one_span_with_tokens_cost_and_propagated_trace(
    recorder: RecorderUnderTest, client: openai.OpenAI, server: FakeAIServer
) -> None:
    with recorder.span("POST /plan", SpanKind.REQUEST) as request:
        completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    (span,) = integration_spans(recorder, 1)
    assert completion.usage is not None
    assert (span.name, span.operation, span.status) == ("openai", "chat.completions", "ok")
    assert (span.trace_id, span.parent_id) == (request.trace_id, request.span_id)
    assert (span.model, span.input_tokens, span.output_tokens) == (
        MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
    )
    assert span.cost == pytest.approx(expected_cost(MODEL, INPUT_TOKENS, OUTPUT_TOKENS))
    assert span.attributes is not None
    assert span.attributes["finish_reason"] == "stop"
    assert "ttft" not in span.attributes
    # The provider sees the span carrying the tokens; httpx recorded no second span.
    assert last_request(server).headers["traceparent"] == traceparent_of(span)


def test_async_chat_completion_is_recorded(
    recorder: RecorderUnderTest, async_client: openai.AsyncOpenAI
) -> None:
    async def call() -> None:
        await async_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    asyncio.run(call())
    (span,) = integration_spans(recorder, 1)
    assert (span.model, span.input_tokens, span.output_tokens) == (
        MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
    )
    assert span.cost == pytest.approx(expected_cost(MODEL, INPUT_TOKENS, OUTPUT_TOKENS))


def test_stream_asks_for_usage_without_showing_it_to_the_caller(
    recorder: RecorderUnderTest, client: openai.OpenAI, server: FakeAIServer
) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))

    assert all(chunk.choices for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert last_request(server).body["stream_options"] == {"include_usage": True}
    (span,) = integration_spans(recorder, 1)
    assert (span.input_tokens, span.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert span.cost == pytest.approx(expected_cost(MODEL, INPUT_TOKENS, OUTPUT_TOKENS))
    assert span.attributes is not None
    assert 0 < span.attributes["ttft"] < span.duration
    assert span.attributes["finish_reason"] == "stop"


def test_stream_keeps_the_usage_chunk_the_caller_asked_for(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    (span,) = integration_spans(recorder, 1)
    assert span.output_tokens == OUTPUT_TOKENS


def test_async_stream_is_recorded_when_read(
    recorder: RecorderUnderTest, async_client: openai.AsyncOpenAI
) -> None:
    async def call() -> list[str]:
        stream = await async_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        assert not recorder.recorded_spans(SpanKind.INTEGRATION)
        return [chunk.choices[0].delta.content or "" async for chunk in stream]

    words = asyncio.run(call())
    assert len([word for word in words if word]) == OUTPUT_TOKENS
    (span,) = integration_spans(recorder, 1)
    assert (span.input_tokens, span.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert span.attributes is not None
    assert 0 < span.attributes["ttft"] < span.duration


def assert_cancelled_not_failed(recorder: RecorderUnderTest) -> None:
    (span,) = integration_spans(recorder, 1)
    assert span.status is SpanStatus.CANCELLED
    assert (span.error_type, span.output_tokens) == (None, None)
    # Health and /metrics judge the integration by these figures: the provider did not fail.
    (live,) = [stats for stats in recorder.live.window(60) if stats.kind == "integration"]
    assert (live.count, live.errors) == (1, 0)


def test_stream_closed_early_is_cancelled_not_failed(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()

    assert_cancelled_not_failed(recorder)


def test_stream_abandoned_early_is_cancelled_not_failed(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    chunks = iter(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    next(chunks)
    del chunks
    gc.collect()

    assert_cancelled_not_failed(recorder)


def test_async_stream_closed_early_is_cancelled_not_failed(
    recorder: RecorderUnderTest, async_client: openai.AsyncOpenAI
) -> None:
    async def call() -> None:
        stream = await async_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
        await anext(aiter(stream))
        await stream.close()

    asyncio.run(call())
    assert_cancelled_not_failed(recorder)


def test_relayed_stream_whose_client_went_away_is_cancelled_not_failed(
    recorder: RecorderUnderTest,
) -> None:
    async def client_goes_away(client: openai.AsyncOpenAI) -> None:
        async def relay() -> AsyncIterator[str]:
            # What a FastAPI StreamingResponse relaying the provider's stream runs.
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                yield chunk.choices[0].delta.content or ""

        relayed = asyncio.Event()

        async def respond() -> None:
            async for _ in relay():
                relayed.set()

        task = asyncio.create_task(respond())
        await relayed.wait()
        task.cancel()  # what the server does when its client disconnects
        with pytest.raises(asyncio.CancelledError):
            await task

    # Tokens slow enough that the client leaves while the stream is still being read.
    with FakeAIServer(latency=0.01, token_interval=0.5, output_tokens=OUTPUT_TOKENS) as slow:
        client = openai.AsyncOpenAI(base_url=slow.openai_base_url, api_key="k", max_retries=0)
        asyncio.run(client_goes_away(client))

    assert_cancelled_not_failed(recorder)


def test_responses_create_and_stream_are_recorded(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    client.responses.create(model=MODEL, input="Plan my garden")
    events = [event.type for event in client.responses.create(model=MODEL, input="x", stream=True)]

    assert events[-1] == "response.completed"
    plain, streamed = integration_spans(recorder, 2)
    for span in (plain, streamed):
        assert (span.operation, span.model) == ("responses", MODEL)
        assert (span.input_tokens, span.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)
        assert span.cost == pytest.approx(expected_cost(MODEL, INPUT_TOKENS, OUTPUT_TOKENS))
        assert span.attributes is not None
        assert span.attributes["finish_reason"] == "completed"
    assert streamed.attributes is not None
    assert 0 < streamed.attributes["ttft"] < streamed.duration


def test_embeddings_are_recorded_with_input_tokens_and_cost(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    assert len(result.data) == 2
    (span,) = integration_spans(recorder, 1)
    assert (span.operation, span.input_tokens, span.output_tokens) == (
        "embeddings",
        INPUT_TOKENS,
        None,
    )
    assert span.cost == pytest.approx(expected_cost("text-embedding-3-small", INPUT_TOKENS, None))


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_api_error_is_recorded_and_reaches_the_caller_unchanged(
    recorder: RecorderUnderTest, status: int, error_class: type[openai.APIStatusError]
) -> None:
    with FakeAIServer(failure_rate=1.0, failure_status=status) as failing:
        client = openai.OpenAI(base_url=failing.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(error_class) as raised:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    (span,) = integration_spans(recorder, 1)
    assert span.status is SpanStatus.ERROR
    assert span.error_type == error_class.__qualname__
    assert span.attributes is not None
    assert span.attributes["status_code"] == status
    assert span.cost is None


def test_unknown_model_keeps_tokens_and_says_its_cost_is_unknown(
    recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="in-house-model-7", messages=MESSAGES)

    (span,) = integration_spans(recorder, 1)
    assert (span.input_tokens, span.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert span.cost is None
    assert span.cost_unknown
    assert span.attributes is not None
    assert span.attributes["cost_status"] == "unknown"


def test_uninstrument_restores_the_client(
    watchkeeper_recorder: RecorderUnderTest, client: openai.OpenAI
) -> None:
    original = Completions.__dict__["create"]
    instrument_openai(watchkeeper_recorder)
    instrument_openai(watchkeeper_recorder)
    assert Completions.__dict__["create"] is not original
    uninstrument_openai()

    assert Completions.__dict__["create"] is original
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert not watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'watchkeeper\[openai\]'"):
        instrument_openai()
