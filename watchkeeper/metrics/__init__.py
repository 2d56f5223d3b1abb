"""Prometheus exposition of what Watchkeeper records.

Metrics are updated by a batch observer on the recorder's flush worker, never on the request
path::

    watchkeeper.instrument(app)  # serves /metrics once API keys are set (or access is opened)

With several worker processes, set ``WATCHKEEPER_METRICS_MULTIPROCESS_DIR`` (or
``PROMETHEUS_MULTIPROC_DIR``) to an empty directory in the server's environment; see
:mod:`watchkeeper.metrics.multiprocess`.
"""

from watchkeeper.metrics.endpoint import MetricsComponent, metrics_router
from watchkeeper.metrics.exporter import PrometheusExporter
from watchkeeper.metrics.labels import OTHER, UNKNOWN
from watchkeeper.metrics.observer import (
    METHOD_ATTRIBUTE,
    REQUEST_SIZE_ATTRIBUTE,
    RESPONSE_SIZE_ATTRIBUTE,
    STATUS_CODE_ATTRIBUTE,
)

__all__ = [
    "METHOD_ATTRIBUTE",
    "OTHER",
    "REQUEST_SIZE_ATTRIBUTE",
    "RESPONSE_SIZE_ATTRIBUTE",
    "STATUS_CODE_ATTRIBUTE",
    "UNKNOWN",
    "MetricsComponent",
    "PrometheusExporter",
    "metrics_router",
]
