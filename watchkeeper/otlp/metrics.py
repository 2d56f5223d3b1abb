"""OpenTelemetry metrics as Watchkeeper metric points, beside the app's business metrics.

Watchkeeper stores a counter as increments and a gauge as readings, so:

- Gauge: a gauge reading.
- Sum, delta and monotonic (a Counter exported as delta): a counter increment.
- Sum, cumulative (what SDKs export by default, monotonic or not): a gauge reading of the running
  total. Turning totals into increments would need the last total of every series, which each
  worker process of a server would keep apart from the others and lose on restart, counting some
  increments twice; a reading is never counted twice, and the increase between two readings is
  the counter's.
- Sum, delta and not monotonic (an UpDownCounter's changes): refused, as a level cannot be told
  from its changes; export it cumulative.
- Histogram and ExponentialHistogram: ``<name>.count`` and ``<name>.sum``, increments when delta
  and readings when cumulative, and ``<name>.min``/``<name>.max`` readings when the point has them.
- Summary: ``<name>.count`` and ``<name>.sum`` readings, and each quantile a reading of ``<name>``
  with a ``quantile`` attribute.

Names keep OpenTelemetry's dots; other characters Watchkeeper's metric names do not allow become
``_``. Each point keeps its attributes (bounded) and the resource's ``service.name`` and
``service.instance.id``; the organisation comes from the point's attributes, then the resource's.
A data point that cannot be recorded (no time, no value, not finite, a kind above that is refused)
is counted by reason, never raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from watchkeeper.model.events import Attributes, MetricKind, MetricPoint
from watchkeeper.otlp.common import (
    ORG_KEYS,
    SERVICE_NAME,
    UNKNOWN_SERVICE,
    Lookup,
    Mapped,
    attributes_of,
    bounded,
)

MAX_NAME_CHARS = 128 - len(".count")
"""Watchkeeper's metric names are at most 128 characters, suffix included."""
MAX_QUANTILES = 16
QUANTILE = "quantile"
RESOURCE_KEPT = (SERVICE_NAME, "service.instance.id")
"""Few resource attributes: each point's attributes become Prometheus labels, eight at most."""

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.:]")

Reading = tuple[str, MetricKind, float, Attributes]
"""A point to record: the name's suffix, the kind, the value, and attributes of its own."""


class Rejected(Exception):
    """A data point that cannot be recorded; ``reason`` reads after "with"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def map_metrics(request: ExportMetricsServiceRequest) -> Mapped[MetricPoint]:
    mapped: Mapped[MetricPoint] = Mapped()
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        kept = {key: resource[key] for key in RESOURCE_KEPT if key in resource}
        kept.setdefault(SERVICE_NAME, UNKNOWN_SERVICE)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                map_metric(metric, resource, kept, mapped)
    return mapped


def map_metric(
    metric: metrics_pb2.Metric, resource: Attributes, kept: Attributes, mapped: Mapped[MetricPoint]
) -> None:
    data = metric.WhichOneof("data")
    if data is None:
        # No data, or a kind newer than the protocol Watchkeeper reads (its field is unknown).
        mapped.rejected["no data of a known kind"] += 1
        return
    series = getattr(metric, data)
    name = metric_name(metric.name)
    if not name:
        mapped.rejected["no metric name"] += len(series.data_points)
        return
    readings_of = READINGS[data]
    for point in series.data_points:
        try:
            _check(point)
            readings = readings_of(series, point)
        except Rejected as rejected:
            mapped.rejected[rejected.reason] += 1
            continue
        attributes = attributes_of(point.attributes)
        org_id = Lookup(attributes, resource).identity(ORG_KEYS)
        moment = point.time_unix_nano / 1e9
        for suffix, kind, value, own in readings:
            mapped.events.append(
                MetricPoint(
                    moment, name + suffix, kind, value, org_id, bounded({**kept, **own}, attributes)
                )
            )


def metric_name(otel_name: str) -> str:
    """An OpenTelemetry instrument name as a Watchkeeper metric name ('' when it has none)."""
    name = _NOT_IN_NAMES.sub("_", otel_name[:MAX_NAME_CHARS])
    if name and not (name[0].isalpha() or name[0] == "_"):
        name = f"_{name}"[:MAX_NAME_CHARS]
    return name


def _check(point: Any) -> None:
    """What every kind of data point needs: a time, and a value recorded."""
    if point.time_unix_nano == 0:
        raise Rejected("no time")
    if point.flags & NO_RECORDED_VALUE:
        raise Rejected("no recorded value")


def _gauge(series: metrics_pb2.Gauge, point: metrics_pb2.NumberDataPoint) -> list[Reading]:
    return [("", MetricKind.GAUGE, _number(point), {})]


def _sum(series: metrics_pb2.Sum, point: metrics_pb2.NumberDataPoint) -> list[Reading]:
    value = _number(point)
    temporality = series.aggregation_temporality
    if temporality == CUMULATIVE:
        return [("", MetricKind.GAUGE, value, {})]
    if temporality != DELTA:
        raise Rejected("no aggregation temporality")
    if not series.is_monotonic:
        raise Rejected("a delta sum that is not monotonic (export up-down counters cumulative)")
    if value < 0:
        raise Rejected("a negative increment of a monotonic sum")
    return [("", MetricKind.COUNTER, value, {})]


def _histogram(
    series: metrics_pb2.Histogram | metrics_pb2.ExponentialHistogram,
    point: metrics_pb2.HistogramDataPoint | metrics_pb2.ExponentialHistogramDataPoint,
) -> list[Reading]:
    temporality = series.aggregation_temporality
    if temporality not in (DELTA, CUMULATIVE):
        raise Rejected("no aggregation temporality")
    totals = MetricKind.COUNTER if temporality == DELTA else MetricKind.GAUGE
    readings: list[Reading] = [(".count", totals, float(point.count), {})]
    if point.HasField("sum"):
        total = _finite(point.sum)
        # A counter only goes up: a delta's negative sum (of negative measurements) is left out.
        if totals is MetricKind.GAUGE or total >= 0:
            readings.append((".sum", totals, total, {}))
    for bound in ("min", "max"):
        if point.HasField(bound):
            readings.append((f".{bound}", MetricKind.GAUGE, _finite(getattr(point, bound)), {}))
    return readings


def _summary(series: metrics_pb2.Summary, point: metrics_pb2.SummaryDataPoint) -> list[Reading]:
    readings: list[Reading] = [
        (".count", MetricKind.GAUGE, float(point.count), {}),
        (".sum", MetricKind.GAUGE, _finite(point.sum), {}),
    ]
    for quantile in point.quantile_values[:MAX_QUANTILES]:
        readings.append(
            ("", MetricKind.GAUGE, _finite(quantile.value), {QUANTILE: quantile.quantile})
        )
    return readings


READINGS: Mapping[str, Callable[[Any, Any], list[Reading]]] = {
    "gauge": _gauge,
    "sum": _sum,
    "histogram": _histogram,
    "exponential_histogram": _histogram,
    "summary": _summary,
}
"""What each kind of OpenTelemetry metric records, by the name of its field in ``Metric``."""


def _number(point: metrics_pb2.NumberDataPoint) -> float:
    which = point.WhichOneof("value")
    if which is None:
        raise Rejected("no value")
    return _finite(float(getattr(point, which)))


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise Rejected("a value that is not finite")
    return value
