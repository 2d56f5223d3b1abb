"""Ties recording to exposition: a batch observer fills the metrics, a registry serves them."""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from watchkeeper.config import Settings
from watchkeeper.metrics.health import RecorderCollector, StatsMirror
from watchkeeper.metrics.multiprocess import (
    enable_multiprocess,
    mark_worker_dead,
    merged_registry,
    multiprocess_directory,
)
from watchkeeper.metrics.observer import BatchMetrics
from watchkeeper.model.batch import Batch
from watchkeeper.recording.recorder import Recorder

MIRROR_INTERVAL = 1.0


class PrometheusExporter:
    """Watchkeeper's Prometheus metrics for one recorder.

    Creating it adds a batch observer to ``recorder`` (the request path is untouched); call
    :meth:`close` when the app stops.
    """

    def __init__(self, recorder: Recorder, settings: Settings | None = None) -> None:
        settings = settings or recorder.settings
        self.recorder = recorder
        self.directory: Path | None = multiprocess_directory(settings)
        # Must precede the first metric this process creates (see watchkeeper.metrics.multiprocess).
        if self.directory is not None:
            enable_multiprocess(self.directory)
        self._metrics_registry = CollectorRegistry()
        self.observer = BatchMetrics(self._metrics_registry, settings.metrics_max_label_values)
        self._mirror: StatsMirror | None = None
        if self.directory is None:
            self.registry = self._metrics_registry
            self.registry.register(RecorderCollector(recorder))
        else:
            self.registry = merged_registry(self.directory)
            self._mirror = StatsMirror(recorder, self._metrics_registry, MIRROR_INTERVAL)
            self._mirror.start()
            atexit.register(self.close)
        self._closed = threading.Event()
        recorder.observers.append(self._observe)

    def _observe(self, batch: Batch) -> None:
        self.observer(batch)
        if self._mirror is not None:
            self._mirror.sync()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the scraper asked for, and its content type."""
        if self._mirror is not None:
            self._mirror.sync()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    def close(self) -> None:
        """Stop observing; in multiprocess mode, retire this worker's live gauges."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._observe in self.recorder.observers:
            self.recorder.observers.remove(self._observe)
        if self._mirror is not None:
            self._mirror.stop()
            atexit.unregister(self.close)
        if self.directory is not None:
            mark_worker_dead(self.directory)
