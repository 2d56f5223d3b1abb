"""Cost of recording one span, beside prometheus_client's labelled observe and an OTel SDK span.

Every variant is timed in blocks of ``batch_size`` calls (the default, 5,000: the flush worker
is woken when that many events wait, so in service the buffer rarely holds more). Between blocks,
untimed, the buffer is drained, as the worker would, and OTel's export thread is flushed; blocks of all variants are interleaved and
the median block is reported. The recorder has a sink that discards and no worker thread, so the
figure is the caller's cost alone: ids, clocks, context variable, span object, enqueue.

An extra information row keeps 100,000 spans alive before a drain (a worker that has fallen far
behind): the span objects are tracked by the cyclic garbage collector, and every collection
then scans them, which shows up as a higher per-span cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, Histogram

from bench.common import Result, realistic_spans
from watchkeeper.config import load_settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.recorder import Recorder


class _DiscardExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DiscardSink:
    """A Sink that writes nothing (never reached here: no worker runs)."""

    def write(self, batch: Batch) -> None:
        pass

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


def run(quick: bool) -> list[Result]:
    rounds = 20 if quick else 60
    recorder = Recorder(load_settings(buffer_size=10_000_000), sink=_DiscardSink())
    block = recorder.settings.batch_size
    histogram = Histogram("bench_seconds", "bench", ["route"], registry=CollectorRegistry())
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DiscardExporter()))
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

    variants: dict[str, Callable[[], None]] = {
        "span": watchkeeper_span,
        "submit": watchkeeper_submit,
        "prometheus": prometheus_observe,
        "otel": otel_span,
    }

    def timed(operation: Callable[[], None], calls: int) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            operation()
        elapsed = (time.perf_counter() - started) / calls
        # The drains, untimed: the worker's for ours (we measure enqueue, not drops), and the
        # OTel processor's export thread, which would otherwise still be busy during the next
        # variant's block and be charged to it.
        recorder._buffer.clear()
        provider.force_flush()
        return elapsed

    for operation in variants.values():  # warm up
        timed(operation, block)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    backlog: list[float] = []
    for index in range(rounds):  # interleaved, so drift on a shared machine hits every variant
        for name, operation in variants.items():
            samples[name].append(timed(operation, block))
        if index % 10 == 0:
            backlog.append(timed(watchkeeper_span, 100_000))
    provider.shutdown()
    if recorder.stats().dropped_total:
        raise RuntimeError("spans were dropped: the measurement would not be of the enqueue")
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    behind = statistics.median(backlog) * 1e6
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
        Result(
            "hot path: span, 100,000 spans undrained",
            "with recorder.span()",
            behind,
            "Histogram.labels().observe()",
            median["prometheus"],
            "µs",
            "(information)",
            True,
        ),
    ]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
