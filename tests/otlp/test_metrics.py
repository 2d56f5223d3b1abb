"""How OpenTelemetry metrics become Watchkeeper metric points: kinds, temporality, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from watchkeeper.model.events import MetricKind
from watchkeeper.otlp.common import Mapped
from watchkeeper.otlp.metrics import map_metrics, metric_name

TIME = 1_700_000_000_000_000_000
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
GAUGE, COUNTER = MetricKind.GAUGE, MetricKind.COUNTER
SHOP = {"service.name": "shop"}


def _pairs(attributes: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=key, value=AnyValue(string_value=v)) for key, v in attributes.items()]


def _number(value: float | None = None, **fields: Any) -> pb.NumberDataPoint:
    point = pb.NumberDataPoint(**({"time_unix_nano": TIME} | fields))
    if isinstance(value, int):
        point.as_int = value
    elif value is not None:
        point.as_double = value
    return point


def _map(*metrics: pb.Metric, resource: dict[str, str] | None = None) -> Mapped[Any]:
    return map_metrics(
        ExportMetricsServiceRequest(
            resource_metrics=[
                pb.ResourceMetrics(
                    resource=Resource(attributes=_pairs(SHOP if resource is None else resource)),
                    scope_metrics=[pb.ScopeMetrics(metrics=metrics)],
                )
            ]
        )
    )


def _points(mapped: Mapped[Any]) -> list[tuple[str, MetricKind, float]]:
    return [(point.name, point.kind, point.value) for point in mapped.events]


def test_gauges_and_sums_by_temporality() -> None:
    mapped = _map(
        pb.Metric(name="queue.depth", gauge=pb.Gauge(data_points=[_number(4)])),
        pb.Metric(
            name="orders",
            sum=pb.Sum(aggregation_temporality=DELTA, is_monotonic=True, data_points=[_number(3)]),
        ),
        pb.Metric(
            name="orders.total",
            sum=pb.Sum(
                aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[_number(41)]
            ),
        ),
        pb.Metric(
            name="sessions.active",
            sum=pb.Sum(aggregation_temporality=CUMULATIVE, data_points=[_number(-2.5)]),
        ),
    )
    assert _points(mapped) == [
        ("queue.depth", GAUGE, 4.0),
        ("orders", COUNTER, 3.0),
        # A running total is a reading: counting it as an increment would count it again on
        # every export.
        ("orders.total", GAUGE, 41.0),
        ("sessions.active", GAUGE, -2.5),
    ]
    assert not mapped.rejected


def test_histograms_give_count_sum_min_and_max() -> None:
    delta = pb.HistogramDataPoint(
        time_unix_nano=TIME, count=3, sum=0.9, min=0.1, max=0.5, bucket_counts=[1, 2]
    )
    cumulative = pb.ExponentialHistogramDataPoint(time_unix_nano=TIME, count=10, sum=7.0)
    mapped = _map(
        pb.Metric(
            name="latency",
            histogram=pb.Histogram(aggregation_temporality=DELTA, data_points=[delta]),
        ),
        pb.Metric(
            name="size",
            exponential_histogram=pb.ExponentialHistogram(
                aggregation_temporality=CUMULATIVE, data_points=[cumulative]
            ),
        ),
    )
    assert _points(mapped) == [
        ("latency.count", COUNTER, 3.0),
        ("latency.sum", COUNTER, 0.9),
        ("latency.min", GAUGE, 0.1),
        ("latency.max", GAUGE, 0.5),
        ("size.count", GAUGE, 10.0),
        ("size.sum", GAUGE, 7.0),
    ]


def test_a_summary_gives_count_sum_and_quantiles() -> None:
    point = pb.SummaryDataPoint(
        time_unix_nano=TIME,
        count=5,
        sum=2.0,
        quantile_values=[pb.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=0.8)],
    )
    mapped = _map(pb.Metric(name="gc", summary=pb.Summary(data_points=[point])))
    assert _points(mapped) == [("gc.count", GAUGE, 5.0), ("gc.sum", GAUGE, 2.0), ("gc", GAUGE, 0.8)]
    assert mapped.events[2].attributes["quantile"] == 0.99


def test_attributes_service_and_organisation() -> None:
    mapped = _map(
        pb.Metric(
            name="tokens",
            gauge=pb.Gauge(data_points=[_number(1, attributes=_pairs({"model": "gpt-4o"}))]),
        ),
        resource={
            "service.name": "shop",
            "service.instance.id": "pod-1",
            "tenant.id": "acme",
            "host.name": "h",
        },
    )
    [point] = mapped.events
    assert point.time == TIME / 1e9
    assert point.org_id == "acme"
    assert point.attributes == {
        "service.name": "shop",
        "service.instance.id": "pod-1",
        "model": "gpt-4o",
    }
    [unnamed] = _map(
        pb.Metric(name="x", gauge=pb.Gauge(data_points=[_number(1)])), resource={}
    ).events
    assert unnamed.attributes == {"service.name": "unknown_service"}


def test_points_that_cannot_be_recorded_are_counted_by_reason() -> None:
    mapped = _map(
        pb.Metric(
            name="g",
            gauge=pb.Gauge(
                data_points=[
                    _number(),  # no value
                    _number(1, time_unix_nano=0),
                    _number(1, flags=1),  # no recorded value
                    _number(float("inf")),
                    _number(2),
                ]
            ),
        ),
        pb.Metric(
            name="c",
            sum=pb.Sum(aggregation_temporality=DELTA, is_monotonic=True, data_points=[_number(-1)]),
        ),
        pb.Metric(
            name="updown",
            sum=pb.Sum(aggregation_temporality=DELTA, data_points=[_number(1)]),
        ),
        pb.Metric(name="unset", sum=pb.Sum(data_points=[_number(1)])),
        pb.Metric(
            name="h",
            histogram=pb.Histogram(data_points=[pb.HistogramDataPoint(time_unix_nano=TIME)]),
        ),
        pb.Metric(name="empty"),
        pb.Metric(name="", gauge=pb.Gauge(data_points=[_number(1), _number(2)])),
    )
    assert _points(mapped) == [("g", GAUGE, 2.0)]
    assert mapped.rejected == {
        "no value": 1,
        "no time": 1,
        "no recorded value": 1,
        "a value that is not finite": 1,
        "a negative increment of a monotonic sum": 1,
        "a delta sum that is not monotonic (export up-down counters cumulative)": 1,
        "no aggregation temporality": 2,
        "no data of a known kind": 1,
        "no metric name": 2,
    }


@pytest.mark.parametrize(
    ("otel", "name"),
    [
        ("http.server.request.duration", "http.server.request.duration"),
        ("process/cpu-time", "process_cpu_time"),
        ("9lives", "_9lives"),
        ("x" * 300, "x" * 122),
    ],
)
def test_names_become_watchkeeper_metric_names(otel: str, name: str) -> None:
    assert metric_name(otel) == name
