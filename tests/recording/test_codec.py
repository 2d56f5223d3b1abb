"""Spans through the compact encoding the spool and the collector's frames share."""

from __future__ import annotations

import orjson
import pytest

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.recording.codec import UnreadableEvents, decode_events, encode_events


def _span(trace_id: int) -> Span:
    span = Span(SpanKind.INTEGRATION, "chat gpt-4o", 1_700_000_000.5, 0.25, trace_id, 7, 3)
    span.status = SpanStatus.ERROR
    span.error_type = "TimeoutError"
    span.user_id = "user-1"
    span.input_tokens = 12
    span.cost = 0.0004
    span.attributes = {"status_code": 504}
    return span


@pytest.mark.parametrize("trace_id", [1, 2**127 + 5, 2**128 - 1])
def test_a_span_comes_back_field_for_field(trace_id: int) -> None:
    [back] = decode_events(encode_events(Batch("svc", "web-1", spans=[_span(trace_id)]))).spans
    assert back.kind is SpanKind.INTEGRATION
    assert back.status is SpanStatus.ERROR
    assert (back.trace_id, back.span_id, back.parent_id) == (trace_id, 7, 3)
    assert (back.name, back.start, back.duration) == ("chat gpt-4o", 1_700_000_000.5, 0.25)
    assert (back.error_type, back.user_id, back.input_tokens) == ("TimeoutError", "user-1", 12)
    assert back.cost == 0.0004
    assert back.attributes == {"status_code": 504}


@pytest.mark.parametrize(("field", "value"), [(0, "telepathy"), (7, "so-so")])
def test_a_kind_or_status_no_version_knows_is_unreadable(field: int, value: str) -> None:
    payload = encode_events(Batch("svc", "web-1", spans=[_span(1)]))
    document = orjson.loads(payload[1:])
    document["spans"][0][field] = value
    with pytest.raises(UnreadableEvents, match="KeyError"):
        decode_events(b"o" + orjson.dumps(document))
