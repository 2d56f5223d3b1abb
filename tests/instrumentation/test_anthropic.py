import asyncio
import sys
from collections.abc import Iterator

import anthropic
import genai_prices
import pytest
from anthropic.resources.messages.messages import Messages

from tests.instrumentation.ai_support import integration_spans, last_request, traceparent_of
from watchkeeper.instrumentation.anthropic import instrument_anthropic, uninstrument_anthropic
from watchkeeper.instrumentation.httpx import instrument_httpx, uninstrument_httpx
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.plugin import RecorderUnderTest

MODEL = "claude-haiku-4-5"
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Plan my week"}]
INPUT_TOKENS = 30
OUTPUT_TOKENS = 10
EXPECTED_COST = float(
    genai_prices.calc_price(
        genai_prices.Usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS),
        MODEL,
        provider_id="anthropic",
    ).total_price
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAIServer]:
    with FakeAIServer(
        seed=5,
        latency=0.03,
        token_interval=0.002,
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
    ) as server:
        yield server


@pytest.fixture
def recorder(watchkeeper_recorder: RecorderUnderTest) -> Iterator[RecorderUnderTest]:
    instrument_httpx(watchkeeper_recorder)
    instrument_anthropic(watchkeeper_recorder)
    try:
        yield watchkeeper_recorder
    finally:
        uninstrument_anthropic()
        uninstrument_httpx()


@pytest.fixture
def client(server: FakeAIServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_client(server: FakeAIServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test-key", max_retries=0)


def assert_priced_call(span_count: int, recorder: RecorderUnderTest, streamed: bool) -> None:
    spans = integration_spans(recorder, span_count)
    for span in spans:
        assert (span.name, span.operation, span.model) == ("anthropic", "messages", MODEL)
        assert (span.input_tokens, span.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS)
        assert span.cost == pytest.approx(EXPECTED_COST)
        assert span.attributes is not None
        assert span.attributes["finish_reason"] == "end_turn"
        if streamed:
            assert 0 < span.attributes["ttft"] < span.duration
        else:
            assert "ttft" not in span.attributes


def test_message_is_one_span_with_tokens_cost_and_propagated_trace(
    recorder: RecorderUnderTest, client: anthropic.Anthropic, server: FakeAIServer
) -> None:
    with recorder.span("POST /plan", SpanKind.REQUEST) as request:
        message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)

    assert message.usage.output_tokens == OUTPUT_TOKENS
    assert_priced_call(1, recorder, streamed=False)
    (span,) = integration_spans(recorder, 1)
    assert (span.trace_id, span.parent_id) == (request.trace_id, request.span_id)
    assert last_request(server).headers["traceparent"] == traceparent_of(span)


def test_async_message_is_recorded(
    recorder: RecorderUnderTest, async_client: anthropic.AsyncAnthropic
) -> None:
    asyncio.run(async_client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES))
    assert_priced_call(1, recorder, streamed=False)


def test_create_stream_is_recorded_from_its_events(
    recorder: RecorderUnderTest, client: anthropic.Anthropic
) -> None:
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    kinds = [event.type for event in stream]

    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert_priced_call(1, recorder, streamed=True)


def test_messages_stream_helper_is_recorded(
    recorder: RecorderUnderTest, client: anthropic.Anthropic, server: FakeAIServer
) -> None:
    with (
        recorder.span("POST /chat", SpanKind.REQUEST) as request,
        client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text
    assert final.usage.output_tokens == OUTPUT_TOKENS
    assert_priced_call(1, recorder, streamed=True)
    (span,) = integration_spans(recorder, 1)
    assert span.parent_id == request.span_id
    assert last_request(server).headers["traceparent"] == traceparent_of(span)


def test_async_messages_stream_helper_is_recorded(
    recorder: RecorderUnderTest, async_client: anthropic.AsyncAnthropic
) -> None:
    async def call() -> str:
        manager = async_client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES)
        async with manager as stream:
            return "".join([text async for text in stream.text_stream])

    assert asyncio.run(call())
    assert_priced_call(1, recorder, streamed=True)


def test_truncated_message_records_its_stop_reason(
    recorder: RecorderUnderTest, client: anthropic.Anthropic
) -> None:
    client.messages.create(model=MODEL, max_tokens=3, messages=MESSAGES)

    (span,) = integration_spans(recorder, 1)
    assert span.output_tokens == 3
    assert span.attributes is not None
    assert span.attributes["finish_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, anthropic.RateLimitError), (500, anthropic.InternalServerError)],
)
def test_api_error_is_recorded_and_reaches_the_caller_unchanged(
    recorder: RecorderUnderTest, status: int, error_class: type[anthropic.APIStatusError]
) -> None:
    with FakeAIServer(failure_rate=1.0, failure_status=status) as failing:
        client = anthropic.Anthropic(base_url=failing.base_url, api_key="k", max_retries=0)
        with pytest.raises(error_class) as raised:
            client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        with (
            pytest.raises(error_class),
            client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES),
        ):
            pass

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    for span in integration_spans(recorder, 2):
        assert span.status is SpanStatus.ERROR
        assert span.error_type == error_class.__qualname__
        assert span.attributes is not None
        assert span.attributes["status_code"] == status


def test_uninstrument_restores_the_client(
    watchkeeper_recorder: RecorderUnderTest, client: anthropic.Anthropic
) -> None:
    originals = (Messages.__dict__["create"], Messages.__dict__["stream"])
    instrument_anthropic(watchkeeper_recorder)
    instrument_anthropic(watchkeeper_recorder)
    uninstrument_anthropic()

    assert (Messages.__dict__["create"], Messages.__dict__["stream"]) == originals
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert not watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION)


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ImportError, match=r"pip install 'watchkeeper\[anthropic\]'"):
        instrument_anthropic()
