"""Live aggregates over rolling windows (last 1, 5 and 15 minutes) per (kind, name).

Fed by the flush worker a batch at a time, never by the request path. Two tiers of slots keep the
windows honest without holding raw values: 10-second slots for the last minute and 60-second slots
for 5 and 15 minutes. Keys are capped; the least recently seen key is evicted (and counted) so
memory stays bounded however many names pass.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from watchkeeper.model.events import Span, SpanStatus
from watchkeeper.model.sketch import LatencySketch

FINE_SLOT = 10
COARSE_SLOT = 60
WINDOWS = (60, 300, 900)
_FINE_KEPT = 60 // FINE_SLOT + 1
_COARSE_KEPT = 900 // COARSE_SLOT + 1

LiveKey = tuple[str, str]


@dataclass(slots=True)
class _Slot:
    count: int = 0
    errors: int = 0
    sketch: LatencySketch = field(default_factory=LatencySketch)


@dataclass(slots=True)
class _Series:
    fine: dict[int, _Slot] = field(default_factory=dict)
    coarse: dict[int, _Slot] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Figures for one (kind, name) over the last ``window_seconds``; latencies in seconds."""

    kind: str
    name: str
    window_seconds: int
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @property
    def per_second(self) -> float:
        return self.count / self.window_seconds


class LiveWindows:
    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.evictions = 0
        self._series: OrderedDict[LiveKey, _Series] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._series)

    def observe(self, spans: Sequence[Span], now: float | None = None) -> None:
        """Add a batch of finished spans, bucketed by when they ended."""
        if not spans:
            return
        grouped: dict[tuple[LiveKey, int, int], list[Span]] = defaultdict(list)
        for span in spans:
            end = int(span.start + span.duration)
            grouped[
                ((span.kind._value_, span.name), end - end % FINE_SLOT, end - end % COARSE_SLOT)
            ].append(span)
        current = int(time.time() if now is None else now)
        with self._lock:
            for (key, fine_start, coarse_start), members in grouped.items():
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series()
                    if len(self._series) > self.max_keys:
                        self._series.popitem(last=False)
                        self.evictions += 1
                else:
                    self._series.move_to_end(key)
                durations = [span.duration for span in members]
                errors = sum(1 for span in members if span.status is SpanStatus.ERROR)
                for slots, start in ((series.fine, fine_start), (series.coarse, coarse_start)):
                    slot = slots.get(start)
                    if slot is None:
                        slot = slots[start] = _Slot()
                    slot.count += len(members)
                    slot.errors += errors
                    slot.sketch.add_many(durations)
            self._prune(current)

    def _prune(self, now: int) -> None:
        fine_floor = now - now % FINE_SLOT - (_FINE_KEPT - 1) * FINE_SLOT
        coarse_floor = now - now % COARSE_SLOT - (_COARSE_KEPT - 1) * COARSE_SLOT
        for series in self._series.values():
            for slots, floor in ((series.fine, fine_floor), (series.coarse, coarse_floor)):
                for start in [start for start in slots if start < floor]:
                    del slots[start]

    def window(self, window_seconds: int, now: float | None = None) -> list[WindowStats]:
        """Figures for every live key over the last ``window_seconds`` (60, 300 or 900)."""
        if window_seconds not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS} seconds, got {window_seconds}")
        current = time.time() if now is None else now
        # A slot counts when any of it falls inside the window; the first minute uses fine slots so
        # "last minute" means 60-70 s, not up to two minutes.
        width = FINE_SLOT if window_seconds == 60 else COARSE_SLOT
        floor = current - window_seconds - width
        results = []
        with self._lock:
            for (kind, name), series in self._series.items():
                slots = series.fine if width == FINE_SLOT else series.coarse
                merged = _Slot()
                for start, slot in slots.items():
                    if start > floor:
                        merged.count += slot.count
                        merged.errors += slot.errors
                        merged.sketch.merge(slot.sketch)
                if merged.count:
                    results.append(
                        WindowStats(
                            kind=kind,
                            name=name,
                            window_seconds=window_seconds,
                            count=merged.count,
                            errors=merged.errors,
                            p50=merged.sketch.quantile(0.5),
                            p95=merged.sketch.quantile(0.95),
                            p99=merged.sketch.quantile(0.99),
                        )
                    )
        return sorted(results, key=lambda stats: (-stats.count, stats.kind, stats.name))
