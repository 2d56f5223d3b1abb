"""Cost of recording one span, beside prometheus_client's labelled observe and an OTel SDK span."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, Histogram

from bench.common import Result, realistic_spans
from watchkeeper.config import load_settings
from watchkeeper.recording.model import SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink


class _Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _per_call(operation: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        operation()
    return (time.perf_counter() - started) / calls


def run(quick: bool) -> list[Result]:
    calls, rounds = (20_000, 5) if quick else (100_000, 9)
    # No worker: nothing drains, so the buffer holds every round and we measure the enqueue.
    recorder = Recorder(load_settings(buffer_size=10_000_000), sink=MemorySink())
    histogram = Histogram("bench_seconds", "bench", ["route"], registry=CollectorRegistry())
    provider = TracerProvider()
    processor = BatchSpanProcessor(_Discard(), max_queue_size=2048)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    prebuilt = realistic_spans(1)[0]

    def watchkeeper_span() -> None:
        with recorder.span("/api/x", SpanKind.REQUEST):
            pass

    def watchkeeper_submit() -> None:
        recorder.submit(prebuilt)

    def prometheus_observe() -> None:
        histogram.labels("/api/x").observe(0.01)

    def otel_span() -> None:
        with tracer.start_as_current_span("x"):
            pass

    variants = {
        "span": watchkeeper_span,
        "submit": watchkeeper_submit,
        "prometheus": prometheus_observe,
        "otel": otel_span,
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits every variant
        for name, operation in variants.items():
            samples[name].append(_per_call(operation, calls))
            recorder._buffer.clear()  # keep enqueues from turning into drops
    provider.shutdown()
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    return [
        Result(
            "hot path: span vs labelled observe",
            "with recorder.span()",
            median["span"],
            "Histogram.labels().observe()",
            median["prometheus"],
            "µs",
            "≤ 1.0×",
            median["span"] <= median["prometheus"],
        ),
        Result(
            "hot path: span vs OTel span",
            "with recorder.span()",
            median["span"],
            "OTel SDK span (batch, discard)",
            median["otel"],
            "µs",
            "≤ 0.1×",
            median["span"] <= median["otel"] / 10,
        ),
        Result(
            "hot path: enqueue only",
            "recorder.submit(span)",
            median["submit"],
            "Histogram.labels().observe()",
            median["prometheus"],
            "µs",
            "(information)",
            True,
        ),
    ]
