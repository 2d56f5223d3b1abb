"""Headline figures for ``/health/metrics``: throughput, errors and latency over 1, 5 and 15 min."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from watchkeeper.health.system import SystemSnapshot
from watchkeeper.model.events import SpanKind
from watchkeeper.model.json import JsonValue
from watchkeeper.recording.stats import StatsSnapshot
from watchkeeper.recording.windows import WINDOWS, LiveWindows, WindowStats
from watchkeeper.redaction import scrub_error

# Enough for a headline; the full list is the dashboard's job.
TOP_NAMES = 20


@dataclass(frozen=True, slots=True)
class NameFigures:
    name: str
    count: int
    errors: int
    per_second: float
    error_rate: float
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None


@dataclass(frozen=True, slots=True)
class KindFigures:
    """All names of one span kind: totals add up exactly; latencies are per name only."""

    count: int
    errors: int
    per_second: float
    error_rate: float
    busiest: list[NameFigures]


@dataclass(frozen=True, slots=True)
class WindowFigures:
    window_seconds: int
    requests: KindFigures
    integrations: KindFigures


def window_figures(live: LiveWindows, window_seconds: int) -> WindowFigures:
    stats = live.window(window_seconds)
    return WindowFigures(
        window_seconds=window_seconds,
        requests=_kind_figures(stats, SpanKind.REQUEST, window_seconds),
        integrations=_kind_figures(stats, SpanKind.INTEGRATION, window_seconds),
    )


def _kind_figures(stats: list[WindowStats], kind: SpanKind, window_seconds: int) -> KindFigures:
    members = [entry for entry in stats if entry.kind == kind.value]
    count = sum(entry.count for entry in members)
    errors = sum(entry.errors for entry in members)
    return KindFigures(
        count=count,
        errors=errors,
        per_second=round(count / window_seconds, 4),
        error_rate=round(errors / count, 4) if count else 0.0,
        busiest=[
            NameFigures(
                name=entry.name,
                count=entry.count,
                errors=entry.errors,
                per_second=round(entry.per_second, 4),
                error_rate=round(entry.error_rate, 4),
                p50_seconds=entry.p50,
                p95_seconds=entry.p95,
                p99_seconds=entry.p99,
            )
            for entry in members[:TOP_NAMES]
        ],
    )


def metrics_document(
    service: str,
    live: LiveWindows,
    recorder_stats: StatsSnapshot,
    system: SystemSnapshot | None,
    uptime_seconds: float,
) -> dict[str, JsonValue]:
    recorder: dict[str, JsonValue] = asdict(recorder_stats)
    recorder["dropped_total"] = recorder_stats.dropped_total
    for name, value in recorder.items():
        # A store's errors name its host and port, and may quote its URL.
        if name.endswith("_error") and isinstance(value, str):
            recorder[name] = scrub_error(value)
    return {
        "serviceId": service,
        "uptime_seconds": round(uptime_seconds, 3),
        "windows": {
            f"{seconds // 60}m": asdict(window_figures(live, seconds)) for seconds in WINDOWS
        },
        "recorder": recorder,
        "system": None if system is None else asdict(system),
    }
