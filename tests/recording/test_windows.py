import pytest

from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.recording.windows import LiveWindows

NOW = 1_700_000_000.0


def span_ending_at(
    end: float, name: str = "/chat", duration: float = 0.1, error: bool = False
) -> Span:
    return Span(
        SpanKind.REQUEST,
        name,
        end - duration,
        duration,
        1,
        2,
        status=SpanStatus.ERROR if error else SpanStatus.OK,
    )


def test_windows_count_only_recent_spans() -> None:
    live = LiveWindows(max_keys=10)
    spans = [span_ending_at(NOW - age) for age in (5, 30, 50)]
    spans += [span_ending_at(NOW - age, error=True) for age in (200, 280)]
    spans += [span_ending_at(NOW - age) for age in (600, 800)]
    spans += [span_ending_at(NOW - 2000)]
    live.observe(spans, now=NOW)
    by_window = {seconds: live.window(seconds, now=NOW)[0] for seconds in (60, 300, 900)}
    assert by_window[60].count == 3
    assert by_window[60].errors == 0
    assert by_window[300].count == 5
    assert by_window[300].errors == 2
    assert by_window[900].count == 7
    assert by_window[300].error_rate == 0.4


def test_percentiles_reflect_the_window() -> None:
    live = LiveWindows(max_keys=10)
    live.observe([span_ending_at(NOW - 1, duration=d / 1000) for d in range(1, 101)], now=NOW)
    stats = live.window(60, now=NOW)[0]
    assert stats.p50 is not None
    assert stats.p99 is not None
    assert abs(stats.p50 - 0.050) / 0.050 < 0.03
    assert abs(stats.p99 - 0.099) / 0.099 < 0.03


def test_old_slots_are_pruned_and_keys_capped_with_evictions_counted() -> None:
    live = LiveWindows(max_keys=3)
    live.observe([span_ending_at(NOW, name=f"/r{i}") for i in range(5)], now=NOW)
    assert len(live) == 3
    assert live.evictions == 2
    live.observe([span_ending_at(NOW + 1000, name="/r4")], now=NOW + 1000)
    names = {stats.name for stats in live.window(900, now=NOW + 1000)}
    assert names == {"/r4"}


def test_unknown_window_is_rejected() -> None:
    live = LiveWindows(max_keys=3)
    with pytest.raises(ValueError, match="60, 300, 900"):
        live.window(120)
