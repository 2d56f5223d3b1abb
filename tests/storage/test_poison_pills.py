"""A poison pill per input channel, end to end: the real middleware and recorder, real stores.

Each test sends one event holding a value no store can take as is (NUL, a lone surrogate, an
absurdly long identity, an integer beyond 64 bits) between good events of the same batch, then
more events after it. The bad event is stored cleaned (or, when it cannot be, rejected and
counted); every other event is stored. Before cleaning and classification, such a value made
the worker retry the batch forever: ``flush`` timed out and nothing after it was stored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

import watchkeeper
from watchkeeper.config import load_settings
from watchkeeper.instrumentation.asgi import WatchkeeperMiddleware
from watchkeeper.instrumentation.identity import FromHeaders, FromJwtClaims
from watchkeeper.instrumentation.metrics import counter
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.model.events import LogLevel, SpanKind
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.model.stored import StoredSpan
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.rows import IDENTITY_LIMIT
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
SURROGATE = "\ud800"
NUL = "\x00"
HUGE = 2**70
LONG_ID = "u" * 20_000


def now_range() -> TimeRange:
    now = time.time()
    return TimeRange(datetime.fromtimestamp(now - 3600, UTC), datetime.fromtimestamp(now + 60, UTC))


@pytest.fixture
def recorder(store: SqlStore) -> Iterator[Recorder]:
    # Non-strict, as in production: a rejected event is contained, not raised into the test.
    # A long interval and batch: what each test submits goes into one batch, written by flush().
    settings = load_settings(flush_interval=60, batch_size=10_000, raise_internal_errors=False)
    recorder = Recorder(settings, sink=store).start()
    try:
        yield recorder
    finally:
        recorder.stop()


def app_of(recorder: Recorder) -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    options = RequestOptions(identity=(FromHeaders(), FromJwtClaims()))
    app.add_middleware(WatchkeeperMiddleware, recorder=recorder, options=options)
    return app


def call(app: FastAPI, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """One GET /ok through the middleware, with header bytes no HTTP client would send."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ok",
        "raw_path": b"/ok",
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("10.0.0.7", 4321),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200


def bearer(claims: dict[str, Any]) -> bytes:
    def part(data: dict[str, Any]) -> bytes:
        # ensure_ascii (the default) writes a lone surrogate as the escape \ud800, as a client
        # may: the server's json.loads turns it back into one.
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    return b"Bearer " + part({"alg": "none"}) + b"." + part(claims) + b".sig"


def flushed(recorder: Recorder) -> None:
    assert recorder.flush(timeout=15), "the worker is stuck retrying a batch"
    assert recorder.stats().pending == 0


def requests(store: SqlStore) -> list[StoredSpan]:
    return store.spans(now_range(), EVERYTHING, limit=1000).items


def assert_nothing_lost(recorder: Recorder) -> None:
    stats = recorder.stats()
    assert sum(stats.dropped.values()) == 0, stats.dropped
    assert stats.flushed == stats.recorded


def cleaned(value: str) -> str:
    return value.replace(NUL, "").replace(SURROGATE, "\ufffd")


def test_identity_headers(recorder: Recorder, store: SqlStore) -> None:
    app = app_of(recorder)
    call(app, [(b"x-user-id", b"before")])
    call(app, [(b"x-user-id", b"nul\x00user"), (b"x-session-id", LONG_ID.encode())])
    call(app, [(b"x-user-id", b"\xff\xfe not utf-8"), (b"x-org-id", "h\u00e9llo".encode())])
    call(app, [(b"x-user-id", b"after")])
    flushed(recorder)
    call(app, [(b"x-user-id", b"later")])
    flushed(recorder)

    stored = {span.user_id: span for span in requests(store)}
    assert set(stored) == {"before", "nuluser", "\u00ff\u00fe not utf-8", "after", "later"}
    session = stored["nuluser"].session_id
    assert session is not None
    assert len(session) == IDENTITY_LIMIT
    assert session.startswith("u" * 200)
    assert stored["\u00ff\u00fe not utf-8"].org_id == "h\u00e9llo"  # UTF-8, not hÃ©llo
    (row,) = store.sessions(now_range(), EVERYTHING).items
    assert row.session_id == session  # the session and its spans are cut alike
    assert_nothing_lost(recorder)


def test_jwt_claims(recorder: Recorder, store: SqlStore) -> None:
    app = app_of(recorder)
    call(app, [(b"authorization", bearer({"sub": "before"}))])
    call(
        app,
        [
            (
                b"authorization",
                bearer({"sub": f"a{SURROGATE}b", "org_id": f"o{NUL}1", "sid": LONG_ID}),
            )
        ],
    )
    call(app, [(b"authorization", bearer({"sub": "after"}))])
    flushed(recorder)
    call(app, [(b"authorization", bearer({"sub": "later"}))])
    flushed(recorder)

    stored = {span.user_id: span for span in requests(store)}
    assert set(stored) == {"before", "a\ufffdb", "after", "later"}
    bad = stored["a\ufffdb"]
    assert bad.org_id == "o1"
    assert bad.session_id is not None
    assert len(bad.session_id) == IDENTITY_LIMIT
    assert_nothing_lost(recorder)


def test_span_attributes(recorder: Recorder, store: SqlStore) -> None:
    with recorder.span("before", SpanKind.INTEGRATION):
        pass
    with recorder.span(f"bad{SURROGATE}", SpanKind.INTEGRATION) as span:
        span.set_attribute("text", f"v{SURROGATE}{NUL}")
        span.set_attribute(f"key{SURROGATE}", HUGE)
        span.set_attribute("nested", {"deep": [SURROGATE, -HUGE, 2**63]})
        span.set_identity(user_id=LONG_ID)
        span.record_error(ValueError(f"message {SURROGATE}{NUL}"))
    with recorder.span("after", SpanKind.INTEGRATION):
        pass
    flushed(recorder)
    with recorder.span("later", SpanKind.INTEGRATION):
        pass
    flushed(recorder)

    stored = {span.name: span for span in requests(store)}
    assert set(stored) == {"before", "bad\ufffd", "after", "later"}
    bad = stored["bad\ufffd"]
    assert bad.attributes == {
        "text": "v\ufffd\x00",  # JSON keeps a NUL, escaped
        "key\ufffd": str(HUGE),
        "nested": {"deep": ["\ufffd", str(-HUGE), 2**63]},
    }
    assert bad.error_message == "message \ufffd"
    assert bad.user_id is not None
    assert len(bad.user_id) == IDENTITY_LIMIT
    assert_nothing_lost(recorder)


def test_log_messages(recorder: Recorder, store: SqlStore) -> None:
    recorder.log(LogLevel.INFO, "before")
    recorder.log(LogLevel.INFO, f"bad {SURROGATE}{NUL}", logger=f"lo{SURROGATE}", attributes={
        "n": HUGE, SURROGATE: SURROGATE})  # fmt: skip
    recorder.log(LogLevel.INFO, "after")
    flushed(recorder)
    recorder.log(LogLevel.INFO, "later")
    flushed(recorder)

    stored = {log.message: log for log in store.logs(now_range(), EVERYTHING).items}
    assert set(stored) == {"before", "bad \ufffd", "after", "later"}
    bad = stored["bad \ufffd"]
    assert bad.logger == "lo\ufffd"
    assert bad.attributes == {"n": str(HUGE), "\ufffd": "\ufffd"}
    assert_nothing_lost(recorder)


def test_snapshots(recorder: Recorder, store: SqlStore) -> None:
    with recorder.span("request", SpanKind.REQUEST) as span:
        span.set_identity(session_id="s1")
        watchkeeper.snapshot("before", {"a": 1}, recorder=recorder)
        watchkeeper.snapshot(
            f"bad{SURROGATE}",
            {"text": f"x{SURROGATE}", "big": HUGE, SURROGATE: [2**64]},
            recorder=recorder,
        )
        watchkeeper.snapshot("after", {"a": 2}, recorder=recorder)
    flushed(recorder)
    with recorder.span("request", SpanKind.REQUEST) as span:
        span.set_identity(session_id="s1")
        watchkeeper.snapshot("later", {"a": 3}, recorder=recorder)
    flushed(recorder)

    detail = store.session("s1", EVERYTHING)
    assert detail is not None
    stored = {snapshot.name: snapshot.data for snapshot in detail.snapshots}
    assert set(stored) == {"before", "bad\ufffd", "after", "later"}
    assert stored["bad\ufffd"] == {"text": "x\ufffd", "big": str(HUGE), "\ufffd": [str(2**64)]}
    assert_nothing_lost(recorder)


def test_metric_attributes(recorder: Recorder, store: SqlStore) -> None:
    credits = counter("credits_used", recorder)
    credits.add(1, step="before")
    credits.add(2, org_id=f"acme{NUL}{SURROGATE}", step=f"bad{SURROGATE}", big=HUGE)
    credits.add(3, step="after")
    flushed(recorder)
    credits.add(4, step="later")
    flushed(recorder)

    points = store.metrics(now_range(), EVERYTHING, "credits_used")
    by_value = {point.value: point for point in points}
    assert set(by_value) == {1.0, 2.0, 3.0, 4.0}
    bad = by_value[2.0]
    assert bad.attributes == {"step": "bad\ufffd", "big": str(HUGE)}
    assert bad.org_id == "acme\ufffd"
    assert_nothing_lost(recorder)


def test_what_cannot_be_cleaned_is_rejected_alone_and_counted_without_its_values(
    recorder: Recorder, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    for index in range(20):
        with recorder.span(f"call {index}", SpanKind.INTEGRATION) as span:
            if index == 7:  # a token count no 64-bit column holds: never storable as it is
                span.usage(model="secret-model", input_tokens=2**64 + 12345)
                span.set_identity(user_id="secret-user")
    with caplog.at_level(logging.WARNING, logger="watchkeeper"):
        flushed(recorder)
    with recorder.span("later", SpanKind.INTEGRATION):
        pass
    flushed(recorder)

    names = {span.name for span in requests(store)}
    assert names == {f"call {index}" for index in range(20) if index != 7} | {"later"}
    stats = recorder.stats()
    assert {reason: count for reason, count in stats.dropped.items() if count} == {"rejected": 1}
    assert store.count(RetainedTable.SPANS) == 20
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warnings, "a rejected event is logged"
    logged = caplog.text
    for secret in ("secret-user", "secret-model", str(2**64 + 12345)):
        assert secret not in logged
    assert str(2**64 + 12345) not in str(stats.last_flush_error)
