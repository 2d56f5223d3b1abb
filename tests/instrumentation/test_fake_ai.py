import json
import math
import time

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from watchkeeper.testing.fake_ai import FakeAIBehaviour, FakeAIServer

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about Saturn"}]


def chat_reply(server: FakeAIServer) -> tuple[str, str]:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    return completion.id, completion.choices[0].message.content or ""


def test_replies_are_deterministic_under_a_seed() -> None:
    with FakeAIServer(seed=42) as first, FakeAIServer(seed=42) as second:
        replies = [chat_reply(first), chat_reply(first)]
        assert [chat_reply(second), chat_reply(second)] == replies
    assert replies[0] != replies[1]
    with FakeAIServer(seed=43) as other:
        assert chat_reply(other) != replies[0]


def test_token_counts_and_truncation_follow_the_configuration() -> None:
    with FakeAIServer(input_tokens=77, output_tokens=9) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        full = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        short = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=4)
        server.configure(input_tokens=None)
        counted = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert full.usage is not None
    assert short.usage is not None
    assert counted.usage is not None
    assert (full.usage.prompt_tokens, full.usage.completion_tokens) == (77, 9)
    assert len((full.choices[0].message.content or "").split()) == 9
    assert (short.usage.completion_tokens, short.choices[0].finish_reason) == (4, "length")
    assert counted.usage.prompt_tokens == math.ceil(len("userTell me about Saturn") / 4)


def test_failures_are_injected_at_the_configured_rate_reproducibly() -> None:
    def outcomes(seed: int) -> list[int]:
        with FakeAIServer(seed=seed, failure_rate=0.5, failure_status=503) as server:
            body = {"model": "m", "messages": MESSAGES}
            url = f"{server.openai_base_url}/chat/completions"
            with httpx.Client() as client:
                return [client.post(url, json=body).status_code for _ in range(40)]

    first = outcomes(7)
    assert first == outcomes(7)
    assert set(first) == {200, 503}
    assert 8 <= first.count(503) <= 32


def test_errors_use_each_providers_format() -> None:
    with FakeAIServer(failure_rate=1.0, failure_status=429) as server:
        oa = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.RateLimitError) as openai_error:
            oa.embeddings.create(model="text-embedding-3-small", input="x")
        an = anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as anthropic_error:
            an.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[])

    assert openai_error.value.type == "rate_limit_error"
    assert isinstance(anthropic_error.value.body, dict)
    assert anthropic_error.value.body["error"]["type"] == "rate_limit_error"


def test_latency_delays_the_answer() -> None:
    with FakeAIServer(latency=0.2) as server:
        started = time.perf_counter()
        chat_reply(server)
        assert time.perf_counter() - started >= 0.2


def test_chat_stream_wire_format() -> None:
    body = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with FakeAIServer(output_tokens=3) as server, httpx.Client() as client:
        url = f"{server.openai_base_url}/chat/completions"
        with client.stream("POST", url, json=body) as response:
            lines = [line for line in response.iter_lines() if line]
            assert response.headers["content-type"].startswith("text/event-stream")

    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks[1:4]] != [None] * 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert (chunks[-1]["choices"], chunks[-1]["usage"]["completion_tokens"]) == ([], 3)


def test_anthropic_stream_event_sequence() -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": MESSAGES, "stream": True}
    with (
        FakeAIServer(output_tokens=2) as server,
        httpx.Client() as client,
        client.stream("POST", f"{server.base_url}/v1/messages", json=body) as response,
    ):
        events = [
            line.removeprefix("event: ")
            for line in response.iter_lines()
            if line.startswith("event: ")
        ]

    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_embeddings_decode_in_the_official_client() -> None:
    with FakeAIServer(embedding_dimensions=16) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])

    assert [item.index for item in result.data] == [0, 1, 2]
    vector = result.data[0].embedding
    assert len(vector) == 16
    assert math.isclose(math.fsum(value * value for value in vector), 1.0, rel_tol=1e-5)


def test_requests_are_kept_and_bad_ones_rejected() -> None:
    with FakeAIServer() as server, httpx.Client() as client:
        rejected = client.post(f"{server.openai_base_url}/chat/completions", json={"x": 1})
        no_limit = client.post(
            f"{server.base_url}/v1/messages", json={"model": "claude-haiku-4-5", "messages": []}
        )
        received = server.received

    assert (rejected.status_code, no_limit.status_code) == (400, 400)
    assert no_limit.json()["error"]["type"] == "invalid_request_error"
    assert [request.path for request in received] == ["/v1/chat/completions", "/v1/messages"]
    assert received[0].body == {"x": 1}


@pytest.mark.parametrize(
    "bad",
    [{"failure_rate": 1.5}, {"latency": -1}, {"output_tokens": 0}, {"failure_status": 200}],
)
def test_impossible_behaviour_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        FakeAIBehaviour(**bad)  # type: ignore[arg-type]
