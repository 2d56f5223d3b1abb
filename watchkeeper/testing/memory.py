"""An in-memory :class:`~watchkeeper.storage.base.Sink` that keeps every batch it is given."""

from __future__ import annotations

import threading

from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.events import (
    LogRecord,
    MetricPoint,
    SessionMark,
    Snapshot,
    Span,
    SpanKind,
    ValidationResult,
)


class MemorySink:
    """Keeps written spans, logs and metric points in lists. ``fail`` simulates an outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._logs: list[LogRecord] = []
        self._metrics: list[MetricPoint] = []
        self._snapshots: list[Snapshot] = []
        self._validations: list[ValidationResult] = []
        self._session_marks: list[SessionMark] = []
        self.batches = 0
        self.fail = False
        self.closed = False

    def write(self, batch: Batch) -> None:
        if self.fail:
            raise StoreUnavailable("MemorySink is failing on purpose (fail=True)")
        with self._lock:
            self._spans.extend(batch.spans)
            self._logs.extend(batch.logs)
            self._metrics.extend(batch.metrics)
            self._snapshots.extend(batch.snapshots)
            self._validations.extend(batch.validations)
            self._session_marks.extend(batch.session_marks)
            self.batches += 1

    def ping(self) -> None:
        if self.fail:
            raise StoreUnavailable("MemorySink is failing on purpose (fail=True)")

    def close(self) -> None:
        self.closed = True

    @property
    def logs(self) -> list[LogRecord]:
        with self._lock:
            return list(self._logs)

    @property
    def metrics(self) -> list[MetricPoint]:
        with self._lock:
            return list(self._metrics)

    @property
    def snapshots(self) -> list[Snapshot]:
        with self._lock:
            return list(self._snapshots)

    @property
    def validations(self) -> list[ValidationResult]:
        with self._lock:
            return list(self._validations)

    @property
    def session_marks(self) -> list[SessionMark]:
        with self._lock:
            return list(self._session_marks)

    def spans(self, kind: SpanKind | None = None, name: str | None = None) -> list[Span]:
        """Written spans in the order they were written, optionally of one kind and name."""
        with self._lock:
            return [
                span
                for span in self._spans
                if (kind is None or span.kind is kind) and (name is None or span.name == name)
            ]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
            self._logs.clear()
            self._metrics.clear()
            self._snapshots.clear()
            self._validations.clear()
            self._session_marks.clear()
