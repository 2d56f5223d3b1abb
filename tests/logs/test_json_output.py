"""``watchkeeper.logging.configure()``: the app's logs as one JSON object per line, alone."""

from __future__ import annotations

import io
import json
import logging

import pytest

import watchkeeper.logging as wk_logging
from tests.recording.support import make_recorder
from watchkeeper.model.events import SpanKind
from watchkeeper.testing import MemorySink


def test_one_object_per_line_with_trace_identity_exception_and_extra() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = wk_logging.configure("info", stream)
    recorder = make_recorder(MemorySink())  # never started: only its spans are used
    log = logging.getLogger("shop.json")
    try:
        log.debug("below the level")
        with recorder.span("POST /orders", SpanKind.REQUEST) as request:
            request.user_id, request.session_id = "u-1", "s-1"
            try:
                raise ValueError("bad basket")
            except ValueError:
                log.exception("order %s rejected", 7, extra={"order": 7})
        wk_logging.audit("report exported", logger=log)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    rejected, exported = (json.loads(line) for line in stream.getvalue().splitlines())
    assert rejected["level"] == "ERROR"
    assert (rejected["logger"], rejected["message"]) == ("shop.json", "order 7 rejected")
    assert rejected["trace_id"] == f"{request.trace_id:032x}"
    assert rejected["span_id"] == f"{request.span_id:016x}"
    assert (rejected["user_id"], rejected["session_id"]) == ("u-1", "s-1")
    assert "org_id" not in rejected
    assert rejected["exception"].rstrip().endswith("ValueError: bad basket")
    assert rejected["extra"] == {"order": 7}
    assert rejected["time"].endswith("+00:00")
    assert (exported["level"], exported["message"]) == ("AUDIT", "report exported")
    assert "trace_id" not in exported


def test_an_unknown_level_is_refused_with_examples() -> None:
    with pytest.raises(ValueError, match="for example INFO"):
        wk_logging.configure("loud")
