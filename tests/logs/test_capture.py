"""An app's stdlib logging and structlog records, captured under a real uvicorn server."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI

import watchkeeper
import watchkeeper.logging as wk_logging
from tests.logs.support import store_settings, stored_logs
from tests.recording.support import make_recorder
from tests.support.server import LiveServer
from watchkeeper.config import load_settings
from watchkeeper.logs.capture import CaptureHandler
from watchkeeper.model.events import LogRecord, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

app_logger = logging.getLogger("shop.orders")


@pytest.fixture
def app_logging() -> Iterator[None]:
    """The app's logger passes INFO; structlog is set back to its defaults afterwards."""
    app_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        app_logger.setLevel(logging.NOTSET)
        structlog.reset_defaults()


def shop_app() -> FastAPI:
    app = FastAPI()
    printed = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            wk_logging.structlog_processor(),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=printed),
    )
    # PrintLogger has no name: apps bind one (structlog.stdlib.add_logger_name does the same).
    structured = structlog.get_logger().bind(logger="shop.structured")

    @app.get("/orders/{number}")
    def place(number: int) -> dict[str, int]:
        app_logger.info("order %s placed", number, extra={"order": number, "channel": "web"})
        app_logger.debug("below the level: not recorded")
        logging.getLogger("watchkeeper.inner").warning("Watchkeeper's own: not recorded")
        return {"order": number}

    @app.get("/pay")
    def pay() -> dict[str, str]:
        try:
            charge()
        except TimeoutError:
            app_logger.exception("payment failed", extra={"fingerprint": "payments-timeout"})
        return {"paid": "no"}

    @app.get("/structured")
    def structured_event() -> dict[str, bool]:
        structured.info("basket viewed", items=3)
        try:
            charge()
        except TimeoutError:
            structured.exception("structured failure")
        return {"ok": True}

    return app


def charge() -> None:
    raise TimeoutError("gateway slow")


def test_records_carry_the_request_trace_identity_exception_and_extra(
    tmp_path: Path, app_logging: None, store_options: dict[str, object]
) -> None:
    settings = store_settings(tmp_path, **store_options)
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    app = shop_app()
    runtime = watchkeeper.instrument(app, settings)
    server = LiveServer(app).start()
    identity = {"X-User-ID": "user-7", "X-Org-ID": "org-2", "X-Session-ID": "session-9"}
    try:
        placed = httpx.get(f"{server.url}/orders/42", headers=identity, timeout=30)
        paid = httpx.get(f"{server.url}/pay", timeout=30)
        structured = httpx.get(f"{server.url}/structured", timeout=30)
        assert any(isinstance(handler, CaptureHandler) for handler in root.handlers)
    finally:
        server.stop()
    # The runtime stopped with the server: the host's root logger is as it was.
    assert (list(root.handlers), root.level) == before
    assert not runtime.recorder.running

    logs = {line.message: line for line in stored_logs(settings)}
    assert set(logs) == {
        "order 42 placed",
        "payment failed",
        "basket viewed",
        "structured failure",
    }
    order = logs["order 42 placed"]
    assert order.trace_id == placed.headers["X-Trace-ID"]
    assert (order.logger, order.level) == ("shop.orders", logging.INFO)
    assert (order.user_id, order.org_id, order.session_id) == ("user-7", "org-2", "session-9")
    assert order.source is None
    assert order.attributes == {"order": 42, "channel": "web"}
    assert logs["payment failed"].trace_id == paid.headers["X-Trace-ID"]
    assert logs["payment failed"].level == logging.ERROR
    assert logs["payment failed"].exception_type == "TimeoutError"
    assert (logs["payment failed"].exception or "").rstrip().endswith("TimeoutError: gateway slow")
    assert logs["basket viewed"].trace_id == structured.headers["X-Trace-ID"]
    assert logs["basket viewed"].logger == "shop.structured"
    assert logs["basket viewed"].attributes == {"items": 3}
    assert logs["structured failure"].trace_id == structured.headers["X-Trace-ID"]
    assert logs["structured failure"].exception_type == "TimeoutError"


def capture_into(recorder: Recorder, level: int = logging.INFO) -> CaptureHandler:
    handler = CaptureHandler(recorder, level)
    app_logger.addHandler(handler)
    return handler


def test_an_event_holds_session_exception_stack_frames_and_fingerprint() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    handler = capture_into(recorder)
    try:
        with recorder.span("GET /pay", SpanKind.REQUEST) as request:
            request.user_id, request.org_id, request.session_id = "u-1", "o-1", "s-1"
            try:
                charge()
            except TimeoutError:
                app_logger.error(
                    "payment failed", exc_info=True, extra={"fingerprint": ["pay", "timeout"]}
                )
            app_logger.warning("slow answer", stack_info=True)
        recorder.stop()
    finally:
        app_logger.removeHandler(handler)
    failed, slow = sink.logs
    assert isinstance(failed, LogRecord)
    assert (failed.trace_id, failed.span_id) == (request.trace_id, request.span_id)
    assert (failed.user_id, failed.org_id, failed.session_id) == ("u-1", "o-1", "s-1")
    assert failed.exception_type == "TimeoutError"
    assert failed.exception is not None
    assert failed.exception.startswith("Traceback (most recent call last):")
    assert failed.exception.rstrip().endswith("TimeoutError: gateway slow")
    assert failed.frames == (
        (__name__, "test_an_event_holds_session_exception_stack_frames_and_fingerprint"),
        (__name__, "charge"),
    )
    assert failed.fingerprint == "pay/timeout"
    assert failed.attributes is None  # the fingerprint is a field, not an attribute
    assert failed.source is None
    assert slow.exception is None
    assert slow.attributes is not None
    assert "test_capture.py" in slow.attributes["stack"]


def test_audit_and_security_are_recorded_whatever_the_level() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    handler = capture_into(recorder, logging.ERROR)
    app_logger.setLevel(logging.CRITICAL)  # the helpers write whatever the logger's level
    try:
        app_logger.warning("below the capture level")
        wk_logging.audit("report %s exported", "r-1", logger=app_logger, extra={"by": "u-1"})
        wk_logging.security("key refused", logger="shop.orders")
        recorder.stop()
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(logging.NOTSET)
    exported, refused = sink.logs
    assert (exported.level, exported.message, exported.attributes) == (
        wk_logging.AUDIT,
        "report r-1 exported",
        {"by": "u-1"},
    )
    assert (refused.level, refused.logger) == (wk_logging.SECURITY, "shop.orders")
    assert logging.getLevelName(wk_logging.AUDIT) == "AUDIT"
    assert logging.getLevelName(wk_logging.SECURITY) == "SECURITY"


def test_the_helpers_name_their_caller_as_the_record_origin() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    app_logger.addHandler(keep)
    try:
        wk_logging.audit("who did what", logger=app_logger)
    finally:
        app_logger.removeHandler(keep)
    [record] = seen
    assert record.funcName == "test_the_helpers_name_their_caller_as_the_record_origin"
    assert record.levelname == "AUDIT"


def test_a_bad_logging_call_or_an_odd_extra_never_raises_into_the_app() -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    # A logger of its own, so the only handler that sees the bad call is the capture handler.
    isolated = logging.getLogger("shop.isolated")
    isolated.propagate = False
    handler = CaptureHandler(recorder, logging.INFO)
    isolated.addHandler(handler)
    try:
        isolated.error("%d items", "not a number")
        isolated.error("odd extra", extra={"when": object(), "data": b"\xff"})
        recorder.stop()
    finally:
        isolated.removeHandler(handler)
        isolated.propagate = True
    assert [log.message for log in sink.logs] == ["%d items", "odd extra"]


def test_off_by_setting(tmp_path: Path) -> None:
    app = FastAPI()
    runtime = watchkeeper.instrument(app, store_settings(tmp_path, log_capture=False))
    assert not any(component.name == "log capture" for component in runtime.components)
    on = watchkeeper.instrument(FastAPI(), load_settings(collector="off"))
    assert any(component.name == "log capture" for component in on.components)


def test_an_app_without_logging_set_up_still_sees_its_warnings_on_standard_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder = make_recorder(MemorySink()).start()
    # Nothing but the capture handler sees this logger's records, as in an app whose logging
    # nobody configured (pytest's own handler is on the root logger).
    bare = logging.getLogger("shop.bare")
    bare.propagate = False
    handler = CaptureHandler(recorder, logging.INFO)
    bare.addHandler(handler)
    try:
        bare.warning("disk almost full")
        bare.info("not printed: below the last resort's level")
        recorder.stop()
    finally:
        bare.removeHandler(handler)
        bare.propagate = True
    assert capsys.readouterr().err == "disk almost full\n"
