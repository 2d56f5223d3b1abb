"""A log record's fields cross to the collector unchanged, the new ones included."""

from __future__ import annotations

import orjson

from watchkeeper.model.batch import Batch
from watchkeeper.model.events import LogRecord
from watchkeeper.recording.codec import decode_events, encode_events


def test_every_field_of_a_log_record_survives_encoding() -> None:
    record = LogRecord(
        1_700_000_000.25,
        40,
        "app.orders",
        "payment failed",
        trace_id=(1 << 127) | 5,
        span_id=77,
        user_id="u-1",
        org_id="o-1",
        attributes={"order": 42},
        session_id="s-1",
        exception_type="TimeoutError",
        exception="Traceback (most recent call last):\n...\nTimeoutError: slow",
        frames=(("app.orders", "pay"), ("app.gateway", "charge")),
        fingerprint="payments-timeout",
        source="/var/log/app.log",
    )
    [back] = decode_events(encode_events(Batch("svc", "i", logs=[record]))).logs
    for field in LogRecord.__slots__:
        assert getattr(back, field) == getattr(record, field), field
    assert isinstance(back.frames, tuple)
    assert isinstance(back.frames[0], tuple)


def test_a_log_row_of_an_older_sender_reads_with_the_new_fields_empty() -> None:
    document = {
        "service": "svc",
        "instance": "i",
        "spans": [],
        "logs": [[1.0, 20, "app", "hello", "ab", 3, "u", "o", {"k": 1}]],
        "metrics": [],
        "snapshots": [],
        "validations": [],
        "marks": [],
    }
    [back] = decode_events(b"o" + orjson.dumps(document)).logs
    assert (back.message, back.trace_id, back.attributes) == ("hello", 0xAB, {"k": 1})
    assert (back.session_id, back.frames, back.source) == (None, None, None)
