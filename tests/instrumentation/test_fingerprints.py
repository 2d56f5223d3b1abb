"""set_fingerprint: the app names the group of the current span's failure."""

from collections.abc import Callable

import pytest

from watchkeeper.config import load_settings
from watchkeeper.instrumentation.fingerprints import set_fingerprint
from watchkeeper.model.error_groups import build_error_deltas
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.containment import InternalError
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink
from watchkeeper.testing.plugin import RecorderUnderTest


def render_chart() -> None:
    raise TimeoutError("chart-service timed out after 3012 ms")


def fetch_ephemeris() -> None:
    raise ConnectionError("ephemeris refused the connection")


def naming(failing: Callable[[], None], recorder: Recorder) -> Callable[[], None]:
    def endpoint() -> None:
        set_fingerprint(["chart", "upstream"], recorder=recorder)
        failing()

    return endpoint


def test_failures_the_code_names_alike_are_one_group_whatever_their_stack(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    recorder = watchkeeper_recorder
    with pytest.raises(TimeoutError), recorder.span("GET /api/chart", SpanKind.REQUEST):
        naming(render_chart, recorder)()
    with pytest.raises(ConnectionError), recorder.span("GET /api/chart", SpanKind.REQUEST):
        naming(fetch_ephemeris, recorder)()
    with pytest.raises(TimeoutError), recorder.span("GET /api/chart", SpanKind.REQUEST):
        render_chart()  # not named: grouped by its own stack
    recorder.flush()

    groups = build_error_deltas(recorder.memory.spans(), [])
    bases = sorted((delta.fingerprint.basis, delta.count) for delta in groups.values())
    assert bases == [("explicit", 2), ("stack", 1)]
    named = next(d for d in groups.values() if d.fingerprint.basis == "explicit")
    assert named.fingerprint.title == "TimeoutError: chart-service timed out after 3012 ms"


def test_outside_a_span_it_does_nothing(watchkeeper_recorder: RecorderUnderTest) -> None:
    set_fingerprint("chart", recorder=watchkeeper_recorder)
    assert watchkeeper_recorder.stats().internal_errors == 0


def test_an_empty_fingerprint_is_misuse_reported_not_raised_into_the_app() -> None:
    strict = Recorder(load_settings(raise_internal_errors=True), sink=MemorySink())
    with pytest.raises(InternalError, match="a fingerprint must be a non-empty string, got ''"):
        set_fingerprint("", recorder=strict)
    lenient = Recorder(load_settings(raise_internal_errors=False), sink=MemorySink())
    set_fingerprint([], recorder=lenient)
    assert lenient.stats().internal_errors == 1
