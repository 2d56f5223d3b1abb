"""Captured log records are redacted on the flush worker as spans are: message, attributes and
the exception's text."""

from __future__ import annotations

import logging

from tests.recording.support import make_recorder
from watchkeeper.logs.capture import CaptureHandler
from watchkeeper.redaction import MASK
from watchkeeper.testing import MemorySink


def test_message_attributes_and_exception_are_redacted_before_the_sink() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    signup = logging.getLogger("shop.signup")
    signup.propagate = False
    handler = CaptureHandler(recorder, logging.INFO)
    signup.addHandler(handler)
    try:
        try:
            raise LookupError("no account for jane@example.com")
        except LookupError:
            signup.exception(
                "welcome mail to jane@example.com failed",
                extra={"email": "jane@example.com", "api_key": "sk-live-1234", "plan": "pro"},
            )
        recorder.stop()
    finally:
        signup.removeHandler(handler)
        signup.propagate = True
    [log] = sink.logs
    assert log.message == f"welcome mail to {MASK} failed"
    assert log.attributes == {"email": MASK, "api_key": MASK, "plan": "pro"}
    assert log.exception is not None
    assert "jane@example.com" not in log.exception
    assert log.exception.rstrip().endswith(f"LookupError: no account for {MASK}")
