"""A log storm fills only the logs' share of the buffer: logs are dropped and counted, spans and
AUDIT/SECURITY records keep their room."""

from __future__ import annotations

import logging

from tests.recording.support import make_recorder
from watchkeeper.logs.capture import CaptureHandler
from watchkeeper.logs.levels import AUDIT, SECURITY
from watchkeeper.model.events import SpanKind
from watchkeeper.testing import MemorySink

BUFFER = 1_000


def test_a_log_storm_drops_logs_not_spans() -> None:
    sink = MemorySink()
    # Not started yet: nothing drains the buffer while the storm lasts.
    recorder = make_recorder(sink, buffer_size=BUFFER, batch_size=100, log_buffer_share=0.4)
    storm = logging.getLogger("shop.storm")
    storm.propagate = False
    storm.setLevel(logging.INFO)
    handler = CaptureHandler(recorder, logging.INFO)
    storm.addHandler(handler)
    try:
        for number in range(3_000):
            storm.info("retrying %d", number)
        for number in range(500):
            with recorder.span(f"GET /items/{number}", SpanKind.REQUEST):
                storm.warning("during a request")  # the share is full: dropped
        storm.log(AUDIT, "report exported")
        storm.log(SECURITY, "key refused")
    finally:
        storm.removeHandler(handler)
        storm.propagate = True
        storm.setLevel(logging.NOTSET)
    recorder.start()
    recorder.stop()
    assert len(sink.spans()) == 500
    assert len(sink.logs) == 400 + 2
    assert [log.level for log in sink.logs[-2:]] == [AUDIT, SECURITY]
    dropped = recorder.stats().dropped
    assert dropped["log_share_full"] == 3_000 - 400 + 500
    assert dropped["buffer_full"] == 0


def test_the_whole_buffer_full_still_drops_protected_levels_as_buffer_full() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink, buffer_size=100, batch_size=100, log_buffer_share=0.5)
    for number in range(100):
        with recorder.span(f"GET /items/{number}", SpanKind.REQUEST):
            pass
    recorder.log(AUDIT, "no room at all")
    recorder.log(logging.INFO, "nor here")
    dropped = recorder.stats().dropped
    assert (dropped["buffer_full"], dropped["log_share_full"]) == (1, 1)
