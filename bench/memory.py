"""Process memory after recording 1,000,000 distinct users and 100,000 sessions in an hour."""

from __future__ import annotations

import gc
import time

import psutil

from bench.common import Result, sqlite_settings
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.model.ids import new_span_id, new_trace_id
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.handle import StoreHandle


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _span(index: int, count: int, origin: float) -> Span:
    span = Span(
        SpanKind.REQUEST,
        f"GET /api/route-{index % 20}",
        origin + 3600 * index / count,
        0.02,
        new_trace_id(),
        new_span_id(),
    )
    span.user_id = f"user-{index}"
    span.session_id = f"session-{index % 100_000}"
    return span


def run(quick: bool) -> list[Result]:
    count = 200_000 if quick else 1_000_000
    origin = time.time() - 3600
    before_baseline = _rss()
    kept = 0
    for index in range(count):  # the same work, recorded nowhere
        kept += len(_span(index, count, origin).name)
    baseline = _rss() - before_baseline
    with sqlite_settings(buffer_size=20_000, batch_size=10_000, flush_interval=0.2) as settings:
        recorder = Recorder(settings, sink=StoreHandle(settings)).start()
        before = _rss()
        for index in range(count):
            recorder.submit(_span(index, count, origin))
            if index % 1_000 == 0:
                while recorder.stats().buffer_depth > 15_000:
                    time.sleep(0.01)  # pace the producer: we measure memory, not drops
        recorder.flush(timeout=900)
        growth = _rss() - before
        stats = recorder.stats()
        recorder.stop()
    if stats.dropped_total:
        raise RuntimeError(f"dropped {stats.dropped}")
    label = f"{count:,} users, {min(count, 100_000):,} sessions"
    return [
        Result(
            f"memory: {label}",
            "RSS growth with recording",
            growth / 2**20,
            "same loop, not recorded",
            baseline / 2**20,
            "MB",
            "< 50 MB",
            growth < 50 * 2**20,
        )
    ]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
