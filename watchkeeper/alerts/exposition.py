"""Open alerts as Prometheus's own ``ALERTS`` series: one per alert, value 1, with
``alertname``, ``alertstate`` (pending or firing), ``severity`` and the alert's labels."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchkeeper.alerts.sql import AlertStore
from watchkeeper.metrics.labels import prometheus_name
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.store import Queries


class AlertsCollector(Collector):
    def __init__(self, stores: Callable[[], tuple[Queries, AlertStore] | None]) -> None:
        self._stores = stores

    def collect(self) -> Iterator[Metric]:
        metric = Metric("ALERTS", "Watchkeeper's open alerts (pending or firing).", "gauge")
        opened = self._stores()
        if opened is not None:
            try:
                alerts = opened[1].open_alerts()
            except StoreUnavailable:
                alerts = []
            for alert in alerts:
                labels = {prometheus_name(key): value for key, value in alert.labels.items()}
                labels.update(
                    alertname=alert.rule,
                    alertstate=alert.state.value,
                    severity=alert.severity.value,
                )
                metric.add_sample("ALERTS", labels, 1.0)
        yield metric
