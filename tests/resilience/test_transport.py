"""The resilient httpx transport, with plain httpx against a real flaky service and with the
real openai client against the fake OpenAI API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.resilience.flaky import FlakyService, Reply
from watchkeeper.instrumentation.httpx import instrument_httpx, uninstrument_httpx
from watchkeeper.instrumentation.openai import instrument_openai, uninstrument_openai
from watchkeeper.model.events import SpanKind
from watchkeeper.recording import attributes
from watchkeeper.resilience.errors import CircuitOpen
from watchkeeper.resilience.policy import (
    BreakerPolicy,
    FallbackPolicy,
    Hooks,
    Policy,
    RetryPolicy,
)
from watchkeeper.resilience.registry import Resilience
from watchkeeper.resilience.transport import AsyncResilientTransport, ResilientTransport
from watchkeeper.resilience.transport2 import ResilientTransport as ResilientTransport2
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.plugin import RecorderUnderTest

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
HOSTS = {"127.0.0.1": "flaky"}


@pytest.fixture(autouse=True)
def _httpx_not_instrumented() -> None:
    """These tests record through the transport alone: an app an earlier test instrumented
    must not have left httpx recording into its own recorder."""
    uninstrument_httpx()


@pytest.fixture
def client(
    resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> Iterator[httpx.Client]:
    resilience.register("flaky", Policy(retry=FAST))
    transport = ResilientTransport(
        hosts=HOSTS, resilience=resilience, recorder=watchkeeper_recorder
    )
    with httpx.Client(transport=transport, timeout=10) as client:
        yield client


def test_a_503_is_retried_below_the_client_and_recorded_on_a_span_of_its_own(
    service: FlakyService, url: str, client: httpx.Client, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.plan(Reply(503), Reply(503))
    response = client.post(url, json={"question": "?"})
    assert response.status_code == 200
    assert response.json()["hit"] == 3

    (span,) = watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION, "flaky")
    assert span.operation == "POST /answer"
    assert span.attributes is not None
    assert span.attributes[attributes.RESILIENCE_ATTEMPTS] == 3
    assert span.attributes[attributes.STATUS_CODE] == 200


def test_only_idempotent_methods_are_retried_after_a_500_and_spent_retries_return_the_answer(
    service: FlakyService, url: str, client: httpx.Client
) -> None:
    service.plan(Reply(500))
    assert client.post(url).status_code == 500
    assert service.hits == 1

    service.plan(Reply(500))
    assert client.get(url).status_code == 200

    service.fail_with(503)
    last = client.get(url)
    assert last.status_code == 503
    assert last.json()["status"] == 503  # the service's own answer, readable
    assert service.hits == 1 + 2 + 3


def test_with_httpx_recording_on_the_attempts_go_on_its_span(
    service: FlakyService, url: str, client: httpx.Client, watchkeeper_recorder: RecorderUnderTest
) -> None:
    instrument_httpx(watchkeeper_recorder, hosts=HOSTS)
    try:
        service.plan(Reply(429, retry_after="0"))
        assert client.get(url).status_code == 200
    finally:
        uninstrument_httpx()
    (span,) = watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION, "flaky")
    assert span.attributes is not None
    (retry,) = span.attributes[attributes.RESILIENCE_RETRIES]
    assert retry == {"attempt": 1, "reason": "status 429", "delay": 0.0}


def test_a_refresh_hook_sets_the_new_token_on_the_request_sent_again(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    service.token = "fresh"
    resilience.register("flaky", Policy(retry=FAST))
    transport = ResilientTransport(
        hosts=HOSTS, resilience=resilience, recorder=watchkeeper_recorder
    )
    resilience.register("flaky", hooks=Hooks(refresh=lambda: "fresh"))
    with httpx.Client(transport=transport) as client:
        response = client.get(url, headers={"Authorization": "Bearer stale"})
    assert response.status_code == 200
    assert service.seen_tokens == ["stale", "fresh"]


@pytest.mark.anyio
async def test_the_async_transport_cuts_a_hung_attempt_and_retries(
    service: FlakyService, url: str, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    resilience.register("flaky", Policy(timeout=1.0, retry=FAST))
    service.plan(Reply(delay=5))
    transport = AsyncResilientTransport(
        hosts=HOSTS, resilience=resilience, recorder=watchkeeper_recorder
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert service.hits == 2


@pytest.fixture(scope="module")
def fake_ai() -> Iterator[FakeAIServer]:
    with FakeAIServer(seed=5, input_tokens=30, output_tokens=10) as server:
        yield server


def test_the_openai_client_through_the_transport_retries_opens_and_answers_from_the_cache(
    fake_ai: FakeAIServer, resilience: Resilience, watchkeeper_recorder: RecorderUnderTest
) -> None:
    policy = Policy(
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, idempotent=True),
        breaker=BreakerPolicy(consecutive_failures=4, cool_down=600),
        fallback=FallbackPolicy(cache=True),
    )
    resilience.register("fake-llm", policy)
    transport = ResilientTransport2(
        hosts={"127.0.0.1": "fake-llm"},
        resilience=resilience,
        recorder=watchkeeper_recorder,
    )
    llm = openai.OpenAI(
        base_url=fake_ai.openai_base_url,
        api_key="test",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )
    instrument_httpx(watchkeeper_recorder, hosts={"127.0.0.1": "fake-llm"})
    instrument_openai(watchkeeper_recorder)
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What should I plant in April?"}
    ]
    try:
        good = llm.chat.completions.create(model="gpt-4o-mini", messages=question)
        fake_ai.configure(failure_rate=1.0, failure_status=503)
        cached = llm.chat.completions.create(model="gpt-4o-mini", messages=question)
        assert cached.choices[0].message.content == good.choices[0].message.content

        with pytest.raises(openai.APIStatusError):
            llm.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "new"}]
            )
        assert resilience.guard("fake-llm").circuit.value == "open"
        received = len(fake_ai.received)
        with pytest.raises(CircuitOpen):  # the client passes resilience's refusal on as it is
            llm.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        assert len(fake_ai.received) == received  # failed fast: the API was not called
    finally:
        fake_ai.configure(failure_rate=0.0)
        uninstrument_openai()
        uninstrument_httpx()

    spans = watchkeeper_recorder.recorded_spans(SpanKind.INTEGRATION)
    assert {span.name for span in spans} == {"openai"}  # one span a call: the LLM's
    first, second = spans[0], spans[1]
    assert first.input_tokens == 30
    assert first.attributes is not None
    assert first.attributes[attributes.RESILIENCE_ATTEMPTS] == 1
    assert second.attributes is not None
    assert second.attributes[attributes.RESILIENCE_FALLBACK] == "cache"
    assert second.attributes[attributes.RESILIENCE_ATTEMPTS] == 2
