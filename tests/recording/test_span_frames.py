"""A span closed by an exception keeps its stack (module and function names); one that ends
normally stores nothing more; the codec carries the stack to the collector and reads older rows."""

from __future__ import annotations

import orjson
import pytest

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.recording.codec import decode_events, encode_events
from watchkeeper.recording.spans import FRAMES_LIMIT, ActiveSpan


def lookup(depth: int) -> None:
    if depth:
        lookup(depth - 1)
        return
    raise KeyError("sign")


def _closed(depth: int = 0) -> Span:
    closed: list[Span] = []
    with pytest.raises(KeyError), ActiveSpan(closed.append, SpanKind.TOOL, "chart", None, None):
        lookup(depth)
    return closed[0]


def test_a_failed_span_keeps_its_stack_innermost_last() -> None:
    failed = _closed()
    assert failed.frames == ((__name__, "_closed"), (__name__, "lookup"))
    deep = _closed(depth=200)
    assert deep.frames is not None
    assert len(deep.frames) == FRAMES_LIMIT
    assert deep.frames[-1] == (__name__, "lookup")


def test_a_span_that_ends_normally_stores_no_stack() -> None:
    closed: list[Span] = []
    with ActiveSpan(closed.append, SpanKind.TOOL, "chart", None, None):
        pass
    assert closed[0].frames is None
    assert "frames" not in vars(closed[0])  # the class default: nothing stored per span


def test_the_codec_carries_a_stack_and_reads_rows_without_one() -> None:
    failed = _closed()
    (decoded,) = decode_events(encode_events(Batch("api", "h", spans=[failed]))).spans
    assert decoded.frames == failed.frames
    assert (decoded.error_type, decoded.status) == ("KeyError", failed.status)

    # An older sender's row ends at the attributes.
    payload = encode_events(Batch("api", "h", spans=[_closed()]))
    document = orjson.loads(payload[1:])
    document["spans"][0] = document["spans"][0][:-1]
    (plain,) = decode_events(payload[:1] + orjson.dumps(document)).spans
    assert plain.frames is None
    assert plain.error_type == "KeyError"
