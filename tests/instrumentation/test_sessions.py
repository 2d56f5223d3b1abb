import pytest

from watchkeeper.config import load_settings
from watchkeeper.instrumentation.sessions import end_session, snapshot, start_session
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.containment import InternalError
from watchkeeper.recording.recorder import Recorder
from watchkeeper.redaction import MASK
from watchkeeper.testing import MemorySink
from watchkeeper.testing.plugin import RecorderUnderTest


def test_session_marks_and_snapshots_link_to_span_and_session(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    recorder = watchkeeper_recorder
    with recorder.span("POST /api/guidance", SpanKind.REQUEST) as request:
        start_session("call-7", user_id="u1", org_id="acme", recorder=recorder)
        snapshot(
            "birth_details",
            {"date": "1990-04-01", "email": "jane@example.com", "place": "Lyon"},
            recorder=recorder,
        )
        with recorder.span("llm", SpanKind.INTEGRATION) as call:
            snapshot("retrieved", {"documents": ["Saturn return"]}, recorder=recorder)
        end_session("call-7", recorder=recorder)  # of the current span's organisation
    end_session("call-7", org_id="acme", recorder=recorder)  # outside it, named
    end_session("call-7", recorder=recorder)  # outside it, unnamed: no organisation's
    recorder.flush()
    assert (request.session_id, call.session_id, call.user_id) == ("call-7", "call-7", "u1")
    first, second = recorder.memory.snapshots
    assert first.data == {"date": "1990-04-01", "email": MASK, "place": "Lyon"}
    assert (first.span_id, first.session_id, first.org_id) == (request.span_id, "call-7", "acme")
    assert (second.span_id, second.trace_id) == (call.span_id, request.trace_id)
    marks = [(m.session_id, m.ended, m.org_id) for m in recorder.memory.session_marks]
    assert marks == [
        ("call-7", False, "acme"),
        ("call-7", True, "acme"),
        ("call-7", True, "acme"),
        ("call-7", True, None),
    ]


def test_a_session_started_without_an_organisation_takes_the_current_ones(
    watchkeeper_recorder: RecorderUnderTest,
) -> None:
    recorder = watchkeeper_recorder
    with recorder.span("POST /api/guidance", SpanKind.REQUEST) as request:
        request.set_identity(user_id="u1", org_id="acme")
        start_session("call-8", recorder=recorder)
    recorder.flush()
    (mark,) = recorder.memory.session_marks
    assert (mark.session_id, mark.user_id, mark.org_id) == ("call-8", None, "acme")


def test_misuse_raises_a_clear_message_in_strict_mode() -> None:
    # Not started: a started strict recorder would raise the first error again at its stop.
    recorder = Recorder(load_settings(raise_internal_errors=True), sink=MemorySink())
    with pytest.raises(InternalError, match=r"needs its data as a mapping.*got list"):
        snapshot("docs", ["a"], recorder=recorder)  # type: ignore[arg-type]
    with pytest.raises(InternalError, match="name must be a non-empty string, got ''"):
        snapshot("", {}, recorder=recorder)
    with pytest.raises(InternalError, match="session_id must be a non-empty string, got None"):
        start_session(None, recorder=recorder)  # type: ignore[arg-type]


def test_misuse_never_raises_into_the_app_and_is_counted() -> None:
    sink = MemorySink()
    recorder = Recorder(load_settings(raise_internal_errors=False), sink=sink).start()
    try:
        snapshot("docs", ["a"], recorder=recorder)  # type: ignore[arg-type]
        snapshot("x" * 500, {}, recorder=recorder)
        start_session(None, recorder=recorder)  # type: ignore[arg-type]
        end_session(42, recorder=recorder)  # type: ignore[arg-type]
        snapshot("kept", {"step": 1}, recorder=recorder)
        recorder.flush()
        assert recorder.stats().internal_errors == 4
        assert [snap.name for snap in sink.snapshots] == ["kept"]
        assert sink.session_marks == []
    finally:
        recorder.stop()
