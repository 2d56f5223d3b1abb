import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import httpx2
import pytest

from tests.instrumentation.ai_support import integration_spans, last_request, traceparent_of
from watchkeeper.config import load_settings
from watchkeeper.instrumentation.hosts import NAME_LIMIT, HostMap
from watchkeeper.instrumentation.httpx import instrument_httpx, path_shape, uninstrument_httpx
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.testing.fake_ai import FakeAIServer
from watchkeeper.testing.plugin import RecorderUnderTest

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAIServer]:
    with FakeAIServer(seed=11, token_interval=0.01) as server:
        yield server


@pytest.fixture
def recorder(watchkeeper_recorder: RecorderUnderTest) -> Iterator[RecorderUnderTest]:
    instrument_httpx(watchkeeper_recorder, hosts={"127.0.0.1": "fake-llm"})
    try:
        yield watchkeeper_recorder
    finally:
        uninstrument_httpx()


def test_call_is_a_child_span_named_by_host_with_traceparent_sent(
    recorder: RecorderUnderTest, server: FakeAIServer
) -> None:
    with recorder.span("POST /plan", SpanKind.REQUEST) as request, httpx.Client() as client:
        response = client.post(f"{server.openai_base_url}/chat/completions?trace=1", json=BODY)

    assert response.status_code == 200
    (span,) = integration_spans(recorder, 1)
    assert (span.name, span.operation) == ("fake-llm", "POST /v1/chat/completions")
    assert (span.trace_id, span.parent_id) == (request.trace_id, request.span_id)
    assert span.attributes is not None
    assert span.attributes["method"] == "POST"
    assert span.attributes["status_code"] == 200
    assert span.attributes["request_size"] == len(response.request.content)
    assert span.attributes["response_size"] == len(response.content)
    received = last_request(server).headers["traceparent"]
    assert received == traceparent_of(span)
    assert received.split("-")[1] == f"{request.trace_id:032x}"


def test_async_and_httpx2_clients_are_recorded(
    recorder: RecorderUnderTest, server: FakeAIServer
) -> None:
    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.openai_base_url}/embeddings", json={"model": "m"})

    asyncio.run(call())
    with httpx2.Client() as client:
        client.post(f"{server.openai_base_url}/embeddings", json={"model": "m"})

    first, second = integration_spans(recorder, 2)
    assert first.operation == second.operation == "POST /v1/embeddings"
    assert last_request(server).headers["traceparent"] == traceparent_of(second)


def test_unknown_host_is_named_after_the_host(
    watchkeeper_recorder: RecorderUnderTest, server: FakeAIServer
) -> None:
    instrument_httpx(watchkeeper_recorder)
    try:
        httpx.post(f"{server.openai_base_url}/embeddings", json={"model": "m"})
    finally:
        uninstrument_httpx()

    (span,) = integration_spans(watchkeeper_recorder, 1)
    assert span.name == "127.0.0.1"


def test_server_errors_are_errors_and_client_errors_are_not(
    recorder: RecorderUnderTest,
) -> None:
    with FakeAIServer(failure_rate=1.0, failure_status=503) as failing:
        httpx.post(f"{failing.openai_base_url}/chat/completions", json=BODY)
        failing.configure(failure_status=429)
        httpx.post(f"{failing.openai_base_url}/chat/completions", json=BODY)

    server_error, client_error = integration_spans(recorder, 2)
    assert server_error.status is SpanStatus.ERROR
    assert server_error.error_message == "503 Service Unavailable"
    assert client_error.status is SpanStatus.OK
    assert client_error.attributes is not None
    assert client_error.attributes["status_code"] == 429


def test_connection_error_is_recorded_and_raised_unchanged(recorder: RecorderUnderTest) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")

    (span,) = integration_spans(recorder, 1)
    assert (span.status, span.error_type) == (SpanStatus.ERROR, "ConnectError")


def test_streamed_response_span_ends_when_the_response_is_closed(
    recorder: RecorderUnderTest, server: FakeAIServer
) -> None:
    body = {**BODY, "stream": True}
    with (
        httpx.Client() as client,
        client.stream("POST", f"{server.openai_base_url}/chat/completions", json=body) as response,
    ):
        reading = response.iter_lines()
        first_line = next(reading)
        held_from = time.perf_counter()
        time.sleep(0.05)
        assert not recorder.recorded_spans(SpanKind.INTEGRATION)
        lines = [first_line, *reading]

    assert lines[0].startswith("data: {")
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    (span,) = integration_spans(recorder, 1)
    assert span.duration >= time.perf_counter() - held_from - 0.01 > 0.05
    assert span.attributes is not None
    assert span.attributes["response_size"] == response.num_bytes_downloaded > 0


def test_existing_traceparent_is_kept(recorder: RecorderUnderTest, server: FakeAIServer) -> None:
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    httpx.post(
        f"{server.openai_base_url}/embeddings",
        json={"model": "m"},
        headers={"traceparent": theirs},
    )

    integration_spans(recorder, 1)
    assert last_request(server).headers["traceparent"] == theirs


def test_uninstrument_restores_send(watchkeeper_recorder: RecorderUnderTest) -> None:
    originals = (httpx.Client.send, httpx.AsyncClient.send, httpx2.Client.send)
    instrument_httpx(watchkeeper_recorder)
    instrument_httpx(watchkeeper_recorder)
    assert httpx.Client.send is not originals[0]
    uninstrument_httpx()

    assert (httpx.Client.send, httpx.AsyncClient.send, httpx2.Client.send) == originals


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/files/file-AbC123dEf456gHi/content", "/v1/files/{id}/content"),
        ("/v1/threads/thread_abc123def456/runs/42", "/v1/threads/{id}/runs/{id}"),
        ("/vectors/3f2b8c1e-9d4a-4b7e-8f1a-2c3d4e5f6a7b", "/vectors/{id}"),
        ("/v1beta/models/gemini-2.5-flash:embed", "/v1beta/models/gemini-2.5-flash:embed"),
        ("/v1/keys/sk1234567890abcdefghijklmnop", "/v1/keys/{id}"),
        ("/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/…"),
        ("", "/"),
    ],
)  # fmt: skip
def test_path_shape_hides_ids_and_stays_short(path: str, shape: str) -> None:
    assert path_shape(path) == shape


def test_host_map_defaults_wildcards_settings_and_unknown_hosts() -> None:
    settings = load_settings(integration_hosts={"llm.internal": "gateway", "api.groq.com": "fast"})
    hosts = HostMap(settings.integration_hosts)

    assert hosts.name_for("api.openai.com") == "openai"
    assert hosts.name_for("API.Anthropic.com") == "anthropic"
    assert hosts.name_for("my-index-abc.svc.us-east1.pinecone.io") == "pinecone"
    assert hosts.name_for("llm.internal") == "gateway"
    assert hosts.name_for("api.groq.com") == "fast"
    assert hosts.lookup("example.org") is None
    assert hosts.name_for("example.org") == "example.org"
    assert len(hosts.name_for("a" * 300 + ".example.org")) == NAME_LIMIT


def test_integration_hosts_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHKEEPER_INTEGRATION_HOSTS", '{"*.corp.example": "corp-ai"}')
    hosts = HostMap(load_settings().integration_hosts)
    assert hosts.name_for("eu.corp.example") == "corp-ai"
