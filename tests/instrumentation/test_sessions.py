import pytest

from watchkeeper.instrumentation.sessions import end_session, snapshot, start_session
from watchkeeper.model.events import SpanKind
from watchkeeper.redaction import MASK
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
    end_session("call-7", recorder=recorder)
    recorder.flush()
    assert (request.session_id, call.session_id, call.user_id) == ("call-7", "call-7", "u1")
    first, second = recorder.memory.snapshots
    assert first.data == {"date": "1990-04-01", "email": MASK, "place": "Lyon"}
    assert (first.span_id, first.session_id, first.org_id) == (request.span_id, "call-7", "acme")
    assert (second.span_id, second.trace_id) == (call.span_id, request.trace_id)
    marks = [(mark.session_id, mark.ended) for mark in recorder.memory.session_marks]
    assert marks == [("call-7", False), ("call-7", True)]


def test_bad_input_is_explained(watchkeeper_recorder: RecorderUnderTest) -> None:
    with pytest.raises(TypeError, match=r"needs its data as a mapping.*got list"):
        snapshot("docs", ["a"], recorder=watchkeeper_recorder)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a non-empty string, got ''"):
        snapshot("", {}, recorder=watchkeeper_recorder)
    with pytest.raises(TypeError, match="session_id must be a non-empty string, got None"):
        start_session(None, recorder=watchkeeper_recorder)  # type: ignore[arg-type]
