"""Metrics named at run time: the user's business counters and gauges, and system gauges.

A metric's label names are fixed the first time it is seen (Prometheus needs one label set per
metric); later points fill missing labels with ``unknown`` and their extra labels are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from watchkeeper.metrics.labels import LabelGuard, prometheus_name
from watchkeeper.model.events import MetricKind

MAX_LABELS = 8
GaugeMode = Literal["liveall", "livesum", "livemax", "livemostrecent"]
RejectPoint = Callable[[str], None]


class NamedMetrics:
    """Creates and updates metrics by name; bounded in metric count and labels per metric."""

    def __init__(
        self,
        registry: CollectorRegistry,
        guard: LabelGuard,
        max_metrics: int,
        gauge_mode: GaugeMode,
        reject: RejectPoint,
    ) -> None:
        self._registry = registry
        self._guard = guard
        self._max_metrics = max_metrics
        self._gauge_mode = gauge_mode
        self._reject = reject
        self._metrics: dict[str, tuple[Counter | Gauge, tuple[str, ...], tuple[str, ...]]] = {}

    def record(
        self,
        name: str,
        kind: MetricKind,
        value: float,
        attributes: Mapping[str, Any] | None,
        documentation: str,
    ) -> None:
        """Add ``value`` to counter ``name`` or set gauge ``name`` to it."""
        entry = self._metrics.get(name)
        if entry is None:
            entry = self._create(name, kind, attributes or {}, documentation)
            if entry is None:
                return
        metric, keys, label_names = entry
        if isinstance(metric, Counter) is not (kind is MetricKind.COUNTER):
            self._reject("kind_conflict")
            return
        if value < 0 and isinstance(metric, Counter):
            self._reject("negative_increment")
            return
        if label_names:
            given = attributes or {}
            values = [
                self._guard.value(name, label, _text(given.get(key)))
                for key, label in zip(keys, label_names, strict=True)
            ]
            metric = metric.labels(*values)
        if isinstance(metric, Counter):
            metric.inc(value)
        else:
            metric.set(value)

    def _create(
        self, name: str, kind: MetricKind, attributes: Mapping[str, Any], documentation: str
    ) -> tuple[Counter | Gauge, tuple[str, ...], tuple[str, ...]] | None:
        if len(self._metrics) >= self._max_metrics:
            self._reject("too_many_metrics")
            return None
        keys = tuple(sorted(attributes))[:MAX_LABELS]
        label_names = tuple(prometheus_name(key) for key in keys)
        if len(set(label_names)) != len(label_names):
            self._reject("label_name_conflict")
            return None
        metric: Counter | Gauge
        try:
            if kind is MetricKind.COUNTER:
                metric = Counter(name, documentation, label_names, registry=self._registry)
            else:
                metric = Gauge(
                    name,
                    documentation,
                    label_names,
                    registry=self._registry,
                    multiprocess_mode=self._gauge_mode,
                )
        except ValueError:
            # An invalid label name, or a name taken by another metric (a gauge `x`, a counter `x`).
            self._reject("invalid_or_conflicting_name")
            return None
        entry = (metric, keys, label_names)
        self._metrics[name] = entry
        return entry


def _text(value: object) -> str | None:
    return None if value is None else str(value)
