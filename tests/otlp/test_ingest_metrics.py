"""OTLP/HTTP metric ingest end to end: the OpenTelemetry SDK's MeterProvider, a periodic reader and
the official OTLP metric exporter, cumulative and delta, and hand-written OTLP JSON, sent to a real
uvicorn server, read back through the REST API and Prometheus exposition."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tests.otlp.served import API_KEY, INGEST_KEY, START_NS, Served, otlp_json

HOUR_MS = 3_600_000
"""The reader's interval: long enough that only the test's force_flush() exports."""


def _provider(served: Served, temporality: AggregationTemporality) -> MeterProvider:
    exporter = OTLPMetricExporter(
        endpoint=served.metrics_url,
        headers={"X-API-Key": INGEST_KEY},
        timeout=10,
        preferred_temporality={
            Counter: temporality,
            Histogram: temporality,
            UpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableGauge: AggregationTemporality.CUMULATIVE,
        },
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=HOUR_MS)
    return MeterProvider(
        metric_readers=[reader],
        resource=Resource.create(
            {"service.name": "shop", "service.instance.id": "shop-1", "org.id": "acme"}
        ),
    )


@pytest.fixture
def cumulative(served: Served) -> Iterator[MeterProvider]:
    provider = _provider(served, AggregationTemporality.CUMULATIVE)
    yield provider
    provider.shutdown()


@pytest.fixture
def delta(served: Served) -> Iterator[MeterProvider]:
    provider = _provider(served, AggregationTemporality.DELTA)
    yield provider
    provider.shutdown()


def _values(served: Served, name: str) -> list[float]:
    return [point["value"] for point in served.api(f"/metrics/{name}")]


def test_a_cumulative_counter_is_read_as_its_running_total(
    served: Served, cumulative: MeterProvider
) -> None:
    meter = cumulative.get_meter("shop.orders")
    orders = meter.create_counter("orders.placed", unit="{order}")
    carts = meter.create_up_down_counter("carts.open")
    queue = {"depth": 4.0}

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(queue["depth"], {"queue": "emails"})]

    meter.create_observable_gauge("queue.depth", callbacks=[observe])
    orders.add(5, {"channel": "web"})
    carts.add(3)
    assert cumulative.force_flush()
    orders.add(3, {"channel": "web"})
    carts.add(-2)
    queue["depth"] = 1.0
    assert cumulative.force_flush()

    points = served.api("/metrics/orders.placed")
    # Each export carries the total so far: kept as readings, never summed as increments.
    assert [(point["kind"], point["value"]) for point in points] == [("gauge", 5), ("gauge", 8)]
    assert points[0]["attributes"] == {
        "service.name": "shop",
        "service.instance.id": "shop-1",
        "channel": "web",
    }
    assert points[0]["org_id"] == "acme"
    assert _values(served, "carts.open") == [3, 1]
    assert _values(served, "queue.depth") == [4, 1]


def test_a_delta_counter_and_histogram_are_increments(served: Served, delta: MeterProvider) -> None:
    meter = delta.get_meter("shop.checkout")
    orders = meter.create_counter("orders.placed")
    latency = meter.create_histogram("checkout.duration", unit="s")
    orders.add(5, {"channel": "web"})
    for seconds in (0.2, 0.4):
        latency.record(seconds)
    assert delta.force_flush()
    orders.add(3, {"channel": "web"})
    latency.record(1.5)
    assert delta.force_flush()

    assert [(p["kind"], p["value"]) for p in served.api("/metrics/orders.placed")] == [
        ("counter", 5),
        ("counter", 3),
    ]
    assert _values(served, "checkout.duration.count") == [2, 1]
    assert _values(served, "checkout.duration.sum") == pytest.approx([0.6, 1.5])
    assert _values(served, "checkout.duration.min") == [0.2, 1.5]
    assert _values(served, "checkout.duration.max") == [0.4, 1.5]

    # Prometheus sees the counter as the app's own business counters: the increments summed.
    exposition = httpx.get(f"{served.url}/metrics", headers={"X-API-Key": API_KEY}, timeout=30)
    assert exposition.status_code == 200
    samples = {
        sample.name: sample
        for family in text_string_to_metric_families(exposition.text)
        for sample in family.samples
    }
    total = samples["app_orders_placed_total"]
    assert total.value == 8
    assert total.labels["channel"] == "web"


def test_a_json_body_is_stored_and_what_cannot_be_is_counted(served: Served) -> None:
    name = f"jobs.{secrets.token_hex(3)}"
    trace_hex, span_hex = secrets.token_hex(16), secrets.token_hex(8)
    body = otlp_json(
        "Metrics",
        [
            {
                "name": name,
                "sum": {
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                    "isMonotonic": True,
                    "dataPoints": [
                        {
                            "timeUnixNano": str(START_NS),
                            "asInt": "12",
                            "attributes": [{"key": "kind", "value": {"stringValue": "email"}}],
                            "exemplars": [{"traceId": trace_hex, "spanId": span_hex, "asInt": "1"}],
                        },
                        {"timeUnixNano": str(START_NS), "asInt": "-1"},
                        {"timeUnixNano": str(START_NS)},
                    ],
                },
            },
            {"name": "nothing", "description": "no data of any kind"},
        ],
    )
    answer = httpx.post(served.metrics_url, json=body, headers={"X-API-Key": INGEST_KEY})
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert int(partial["rejectedDataPoints"]) == 3
    assert partial["errorMessage"] == (
        "3 data point(s) rejected: 1 with a negative increment of a monotonic sum, "
        "1 with no value, 1 with no data of a known kind"
    )
    [point] = served.metric(name)
    assert (point.kind, point.value, point.time.timestamp()) == ("counter", 12, START_NS / 1e9)
    assert point.attributes == {"service.name": "go-api", "kind": "email"}
