import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

import watchkeeper
from tests.metrics.support import promtool, total, value
from watchkeeper.config import Settings, load_settings
from watchkeeper.metrics import (
    METHOD_ATTRIBUTE,
    REQUEST_SIZE_ATTRIBUTE,
    RESPONSE_SIZE_ATTRIBUTE,
    STATUS_CODE_ATTRIBUTE,
    PrometheusExporter,
)
from watchkeeper.model.events import (
    MetricKind,
    Severity,
    Span,
    SpanKind,
    SpanStatus,
    ValidationResult,
)
from watchkeeper.model.ids import new_span_id, new_trace_id
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.testing import MemorySink

KEY = "metrics-key-0123456789"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    settings = load_settings(
        flush_interval=0.02,
        raise_internal_errors=True,
        api_keys=[KEY],
        metrics_max_label_values=5,
        sqlite_path=tmp_path / "watchkeeper.db",  # the store an instrumented app's API reads
    )
    recorder = Recorder(settings, sink=MemorySink()).start()
    yield recorder
    recorder.stop()


@pytest.fixture
def exporter(recorder: Recorder) -> Iterator[PrometheusExporter]:
    exporter = PrometheusExporter(recorder)
    yield exporter
    exporter.close()


def span(kind: SpanKind, name: str, duration: float = 0.2, **fields: object) -> Span:
    attributes = fields.pop("attributes", None)
    result = Span(kind, name, time.time(), duration, new_trace_id(), new_span_id(), **fields)  # type: ignore[arg-type]
    result.attributes = attributes  # type: ignore[assignment]
    return result


def request(handler: str, method: str, status: int, duration: float = 0.2) -> Span:
    return span(
        SpanKind.REQUEST,
        handler,
        duration,
        attributes={
            METHOD_ATTRIBUTE: method,
            STATUS_CODE_ATTRIBUTE: status,
            REQUEST_SIZE_ATTRIBUTE: 10,
            RESPONSE_SIZE_ATTRIBUTE: 200,
        },
    )


def scrape(exporter: PrometheusExporter, recorder: Recorder, accept: str = "") -> str:
    assert recorder.flush(5.0)
    body, _ = exporter.exposition(accept)
    return body.decode()


def test_request_metrics_use_the_instrumentator_names_and_labels(
    recorder: Recorder, exporter: PrometheusExporter
) -> None:
    for _ in range(3):
        recorder.submit(request("/items/{item_id}", "GET", 200, 0.05))
    recorder.submit(request("/items/{item_id}", "GET", 404, 0.7))
    recorder.submit(request("/items", "POST", 503, 2.0))
    text = scrape(exporter, recorder)

    handler = "/items/{item_id}"
    assert value(text, "http_requests_total", method="GET", status="2xx", handler=handler) == 3
    assert value(text, "http_requests_total", method="GET", status="4xx", handler=handler) == 1
    assert value(text, "http_requests_total", method="POST", status="5xx", handler="/items") == 1
    duration = "http_request_duration_seconds_bucket"
    assert value(text, duration, method="GET", handler=handler, le="0.1") == 3
    assert value(text, duration, method="GET", handler=handler, le="1.0") == 4
    assert value(text, duration, method="GET", handler=handler, le="+Inf") == 4
    assert value(text, "http_request_duration_highr_seconds_count") == 5
    assert value(text, "http_request_size_bytes_sum", handler=handler) == 40
    assert value(text, "http_response_size_bytes_count", handler="/items") == 1


def test_integration_llm_tool_agent_queue_and_validation_metrics(
    recorder: Recorder, exporter: PrometheusExporter
) -> None:
    recorder.submit(
        span(
            SpanKind.INTEGRATION,
            "openai",
            1.5,
            operation="chat",
            model="gpt-4o",
            input_tokens=100,
            output_tokens=20,
            cost=0.0125,
        )
    )
    recorder.submit(
        span(
            SpanKind.INTEGRATION,
            "openai",
            3.0,
            operation="chat",
            model="mystery-model",
            input_tokens=7,
            status=SpanStatus.ERROR,
        )
    )
    recorder.submit(span(SpanKind.TOOL, "search", 0.3))
    recorder.submit(span(SpanKind.AGENT, "planner", 4.0, status=SpanStatus.ERROR))
    recorder.submit(span(SpanKind.QUEUE, "emails", 0.4, operation="wait"))
    recorder.metric("queue.emails.size", 7, MetricKind.GAUGE)
    recorder.metric("queue.emails.processed", 3)
    recorder.metric("queue.emails.failed", 1)
    for passed in (True, False, False):
        recorder.submit(
            ValidationResult(
                time.time(), "max_length", "answer", passed, 900, "<= 500", Severity.ERROR
            )
        )
    text = scrape(exporter, recorder)

    calls = "watchkeeper_integration_calls_total"
    assert value(text, calls, integration="openai", operation="chat", status="ok") == 1
    assert value(text, calls, integration="openai", operation="chat", status="error") == 1
    assert (
        value(text, "watchkeeper_integration_duration_seconds_sum", integration="openai",
              operation="chat")
        == 4.5
    )  # fmt: skip
    tokens = "watchkeeper_llm_tokens_total"
    assert value(text, tokens, model="gpt-4o", direction="input") == 100
    assert value(text, tokens, model="gpt-4o", direction="output") == 20
    assert value(text, "watchkeeper_llm_cost_usd_total", model="gpt-4o") == pytest.approx(0.0125)
    assert value(text, "watchkeeper_llm_cost_unknown_total", model="mystery-model") == 1
    assert value(text, "watchkeeper_llm_cost_usd_total", model="mystery-model") is None
    assert value(text, "watchkeeper_tool_calls_total", tool="search", status="ok") == 1
    assert value(text, "watchkeeper_agent_calls_total", agent="planner", status="error") == 1
    assert value(text, "watchkeeper_queue_wait_seconds_count", queue="emails") == 1
    assert value(text, "watchkeeper_queue_size", queue="emails") == 7
    assert value(text, "watchkeeper_queue_processed_total", queue="emails") == 3
    assert value(text, "watchkeeper_queue_failed_total", queue="emails") == 1
    assert (
        value(text, "watchkeeper_validations_total", target="answer", validator="max_length") == 3
    )
    failures = "watchkeeper_validation_failures_total"
    assert value(text, failures, target="answer", validator="max_length", severity="error") == 2


def test_business_and_system_metrics_get_sanitized_names(
    recorder: Recorder, exporter: PrometheusExporter
) -> None:
    recorder.metric("credits.used", 5, attributes={"plan": "pro"})
    recorder.metric("credits.used", 2.5, attributes={"plan": "pro"})
    recorder.metric("active.sessions", 4, MetricKind.GAUGE)
    recorder.metric("active.sessions", 3, MetricKind.GAUGE)
    recorder.metric("system.cpu.percent", 42.5, MetricKind.GAUGE)
    recorder.metric("active.sessions", 1)  # a counter under a gauge's name is refused
    text = scrape(exporter, recorder)

    assert value(text, "app_credits_used_total", plan="pro") == 7.5
    assert value(text, "app_active_sessions") == 3
    assert value(text, "watchkeeper_system_cpu_percent") == 42.5
    assert value(text, "watchkeeper_metrics_rejected_points_total", reason="kind_conflict") == 1


def test_recorder_health_is_read_at_scrape_time(
    recorder: Recorder, exporter: PrometheusExporter
) -> None:
    for _ in range(4):
        recorder.metric("signups", 1)
    text = scrape(exporter, recorder)
    assert value(text, "watchkeeper_recorder_events_flushed_total") == 4
    assert value(text, "watchkeeper_recorder_events_recorded_total") == 4
    assert value(text, "watchkeeper_recorder_events_dropped_total", reason="buffer_full") == 0
    assert value(text, "watchkeeper_recorder_buffer_capacity_events") == 100_000
    assert value(text, "watchkeeper_recorder_store_failures_total") == 0
    flush_lag = value(text, "watchkeeper_recorder_flush_lag_seconds")
    assert flush_lag is not None
    assert 0 <= flush_lag < 5


def test_label_values_beyond_the_cap_collapse_into_other_and_are_counted(
    recorder: Recorder, exporter: PrometheusExporter
) -> None:
    # The fixture caps each label at 5 distinct values.
    for index in range(12):
        recorder.submit(span(SpanKind.INTEGRATION, f"service-{index}", operation="call"))
    text = scrape(exporter, recorder)

    calls = "watchkeeper_integration_calls_total"
    assert total(text, calls) == 12
    assert value(text, calls, integration="other", operation="call", status="ok") == 7
    assert value(text, calls, integration="service-0", operation="call", status="ok") == 1
    assert value(text, calls, integration="service-5", operation="call", status="ok") is None
    overflow = "watchkeeper_metrics_label_overflow_total"
    assert value(text, overflow, metric="watchkeeper_integration", label="integration") == 7


def test_openmetrics_is_served_when_asked(recorder: Recorder, exporter: PrometheusExporter) -> None:
    recorder.submit(request("/", "GET", 200))
    assert recorder.flush(5.0)
    body, content_type = exporter.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in openmetrics_families(text)}  # type: ignore[no-untyped-call]
    requests = families["http_requests"]
    assert requests.type == "counter"
    assert [sample.value for sample in requests.samples if sample.name.endswith("_total")] == [1]
    _, plain_type = exporter.exposition("text/plain")
    assert plain_type.startswith("text/plain; version=0.0.4")


@pytest.mark.skipif(promtool() is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_exposition(
    recorder: Recorder, exporter: PrometheusExporter, tmp_path: Path
) -> None:
    recorder.submit(request("/items/{item_id}", "GET", 200))
    recorder.submit(span(SpanKind.INTEGRATION, "anthropic", operation="messages", model="claude",
                         input_tokens=5, cost=0.001))  # fmt: skip
    recorder.metric("credits.used", 1)
    recorder.metric("queue.jobs.size", 2, MetricKind.GAUGE)
    text = scrape(exporter, recorder)
    checked = subprocess.run(
        [str(promtool()), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def instrument(app: FastAPI, recorder: Recorder, settings: Settings | None = None) -> Runtime:
    """Watchkeeper in ``app``, recording into ``recorder``; not the process's recorder after."""
    try:
        return watchkeeper.instrument(app, settings, recorder=recorder, outbound=False)
    finally:
        set_recorder(None)


def test_metrics_endpoint_requires_a_key_and_honours_accept(recorder: Recorder) -> None:
    app = FastAPI()
    metrics = instrument(app, recorder).metrics
    assert metrics is not None
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        plain = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert plain.status_code == 200
        assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "watchkeeper_recorder_events_recorded_total" in plain.text
        openmetrics = client.get(
            "/metrics",
            headers={"X-API-Key": KEY, "Accept": "application/openmetrics-text; version=1.0.0"},
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")
    # Once the app has shut down, the exporter no longer counts what the recorder sees, even
    # with the recorder (stopped by the app's shutdown) running again.
    assert not recorder.running
    recorder.start()
    recorder.submit(request("/after", "GET", 200))
    text = scrape(metrics.exporter, recorder)
    assert value(text, "http_requests_total", method="GET", status="2xx", handler="/after") is None


@pytest.mark.parametrize("keys", [[], [KEY]], ids=["no keys", "keys set"])
def test_unprotected_metrics_need_no_key(
    recorder: Recorder, tmp_path: Path, keys: list[str]
) -> None:
    settings = load_settings(
        protect_metrics=False, api_keys=keys, sqlite_path=tmp_path / "unprotected.db"
    )
    app = FastAPI()
    instrument(app, recorder, settings)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 200
