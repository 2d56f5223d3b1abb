"""The recorder's own health as metrics: what it recorded, wrote and dropped, and how far behind.

In one process a custom collector reads :meth:`Recorder.stats` at scrape time, so the figures are
exact and cost nothing between scrapes. With several worker processes a scrape reaches only one of
them, so each process instead mirrors its figures into multiprocess-backed metrics (on every
batch and every second, as :class:`StatsMirror`), and the scrape merges the files of all workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.stats import StatsSnapshot

GaugeMode = Literal["livesum", "livemax"]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    documentation: str
    read: Callable[[StatsSnapshot], float | None]
    counter: bool
    # How the figures of several live worker processes combine into one.
    gauge_mode: GaugeMode = "livesum"


FIGURES = (
    Figure(
        "watchkeeper_recorder_events_recorded_total",
        "Events accepted by the recorder.",
        lambda stats: stats.recorded,
        counter=True,
    ),
    Figure(
        "watchkeeper_recorder_events_flushed_total",
        "Events written to the store.",
        lambda stats: stats.flushed,
        counter=True,
    ),
    Figure(
        "watchkeeper_recorder_batches_written_total",
        "Batches written to the store.",
        lambda stats: stats.batches_written,
        counter=True,
    ),
    Figure(
        "watchkeeper_recorder_store_failures_total",
        "Failed attempts to write a batch to the store (each is retried).",
        lambda stats: stats.store_failures,
        counter=True,
    ),
    Figure(
        "watchkeeper_recorder_internal_errors_total",
        "Errors inside Watchkeeper that were contained rather than raised into the app.",
        lambda stats: stats.internal_errors,
        counter=True,
    ),
    Figure(
        "watchkeeper_recorder_buffer_events",
        "Events waiting in the recorder's buffer.",
        lambda stats: stats.buffer_depth,
        counter=False,
    ),
    Figure(
        "watchkeeper_recorder_buffer_capacity_events",
        "Events the recorder's buffer holds before dropping new ones.",
        lambda stats: stats.buffer_capacity,
        counter=False,
    ),
    Figure(
        "watchkeeper_recorder_pending_events",
        "Events in the batch waiting to be written (while the store is failing).",
        lambda stats: stats.pending,
        counter=False,
    ),
    Figure(
        "watchkeeper_recorder_spooled_events",
        "Events in spool files waiting for the store (the spool directory as this process "
        "last saw it; worker processes sharing it see the same files).",
        lambda stats: stats.spooled,
        counter=False,
        gauge_mode="livemax",
    ),
    Figure(
        "watchkeeper_recorder_flush_lag_seconds",
        "Age of the oldest event of the last batch written, when it was written.",
        lambda stats: stats.flush_lag_seconds,
        counter=False,
        gauge_mode="livemax",
    ),
    Figure(
        "watchkeeper_recorder_last_flush_timestamp_seconds",
        "When the last batch was written (Unix time).",
        lambda stats: stats.last_flush_at,
        counter=False,
        gauge_mode="livemax",
    ),
)
DROPPED_NAME = "watchkeeper_recorder_events_dropped_total"
DROPPED_DOCUMENTATION = "Events the recorder dropped, by reason."


class RecorderCollector(Collector):
    """Reads the recorder's figures at scrape time (single-process exposition)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        stats = self._recorder.stats()
        for figure in FIGURES:
            value = figure.read(stats)
            if value is None:
                continue
            if figure.counter:
                yield CounterMetricFamily(figure.name, figure.documentation, value=value)
            else:
                yield GaugeMetricFamily(figure.name, figure.documentation, value=value)
        dropped = CounterMetricFamily(DROPPED_NAME, DROPPED_DOCUMENTATION, labels=("reason",))
        for reason, count in sorted(stats.dropped.items()):
            dropped.add_metric((reason,), count)
        yield dropped


class StatsMirror:
    """Copies the recorder's figures into metrics that multiprocess mode writes to shared files.

    Counters advance by the difference since the last copy, so the merged total stays right when
    a worker exits; gauges are set outright.
    """

    def __init__(self, recorder: Recorder, registry: CollectorRegistry, interval: float) -> None:
        self._recorder = recorder
        self._interval = interval
        self._lock = threading.Lock()
        self._metrics: list[tuple[Figure, Counter | Gauge]] = [
            (
                figure,
                Counter(figure.name, figure.documentation, registry=registry)
                if figure.counter
                else Gauge(
                    figure.name,
                    figure.documentation,
                    registry=registry,
                    multiprocess_mode=figure.gauge_mode,
                ),
            )
            for figure in FIGURES
        ]
        self._dropped = Counter(DROPPED_NAME, DROPPED_DOCUMENTATION, ("reason",), registry=registry)
        self._copied: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="watchkeeper-metrics-mirror", daemon=True
        )

    def start(self) -> None:
        self.sync()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.sync()

    def _run(self) -> None:
        # A store outage stops the flush worker's batches, which is when these figures matter
        # most, so they are copied on a clock of their own as well.
        while not self._stopping.wait(self._interval):
            self.sync()

    def sync(self) -> None:
        stats = self._recorder.stats()
        with self._lock:
            for figure, metric in self._metrics:
                value = figure.read(stats)
                if value is None:
                    continue
                if isinstance(metric, Counter):
                    self._advance(figure.name, metric, value)
                else:
                    metric.set(value)
            for reason, count in stats.dropped.items():
                self._advance(f"{DROPPED_NAME}:{reason}", self._dropped.labels(reason), count)

    def _advance(self, key: str, counter: Counter, value: float) -> None:
        increase = value - self._copied.get(key, 0.0)
        if increase > 0:
            counter.inc(increase)
            self._copied[key] = value
