"""The formats tail reads: each written by its real writer where there is one (the standard
library's logging, Watchkeeper's JSON formatter), tracebacks joined to their record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.recording.support import make_recorder
from watchkeeper.logs.json_output import JsonFormatter
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.tailer import Tailer
from watchkeeper.model.events import LogRecord, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink


def read_all(path: Path, pattern: str | None = None) -> list[LogRecord]:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    compiled = re.compile(pattern) if pattern else None
    Tailer(recorder, [path], Offsets(path.parent / "offsets"), compiled).drain()
    recorder.stop()
    return list(sink.logs)


@pytest.fixture
def file_logger(tmp_path: Path) -> Iterator[tuple[logging.Logger, Path]]:
    """A logger writing through a real FileHandler; the format is set by each test."""
    path = tmp_path / "app.log"
    writer = logging.getLogger(f"shop.file.{tmp_path.name}")
    writer.propagate = False
    writer.setLevel(logging.DEBUG)
    handler = logging.FileHandler(path, encoding="utf-8")
    writer.addHandler(handler)
    try:
        yield writer, path
    finally:
        writer.removeHandler(handler)
        handler.close()


def fail() -> None:
    try:
        raise KeyError("basket-17")
    except KeyError as error:
        raise TimeoutError("gateway slow after 3012 ms") from error


def test_python_default_formats_with_a_chained_traceback_joined(
    file_logger: tuple[logging.Logger, Path],
) -> None:
    writer, path = file_logger
    handler = writer.handlers[0]
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    writer.info("first line\nsecond line of the same message")
    try:
        fail()
    except TimeoutError:
        writer.exception("payment failed")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    writer.warning("cookbook format")
    multi, failed, cookbook = read_all(path)
    assert (multi.level, multi.logger) == (logging.INFO, writer.name)
    assert multi.message == "first line\nsecond line of the same message"
    assert multi.exception is None
    assert (failed.level, failed.message) == (logging.ERROR, "payment failed")
    assert failed.exception is not None
    assert failed.exception.startswith("Traceback (most recent call last):")
    assert "The above exception was the direct cause" in failed.exception
    assert failed.exception.endswith("TimeoutError: gateway slow after 3012 ms")
    assert failed.exception_type == "TimeoutError"
    assert failed.frames is not None
    # The last traceback's frames, innermost last; a file's module is named by its path.
    assert [function for _, function in failed.frames] == [
        "test_python_default_formats_with_a_chained_traceback_joined",
        "fail",
    ]
    assert failed.frames[-1][0].endswith("tests.logs.test_tail_formats")
    assert (cookbook.level, cookbook.logger, cookbook.message) == (
        logging.WARNING,
        writer.name,
        "cookbook format",
    )
    assert abs(cookbook.time - datetime.now().timestamp()) < 3600
    assert {record.source for record in (multi, failed, cookbook)} == {str(path)}


def test_json_lines_of_watchkeepers_formatter_read_back_field_for_field(
    file_logger: tuple[logging.Logger, Path],
) -> None:
    writer, path = file_logger
    writer.handlers[0].setFormatter(JsonFormatter())
    recorder: Recorder = make_recorder(MemorySink())
    with recorder.span("GET /pay", SpanKind.REQUEST) as request:
        request.user_id, request.org_id, request.session_id = "u-1", "o-1", "s-1"
        try:
            fail()
        except TimeoutError:
            writer.error("payment failed", exc_info=True, extra={"order": 42, "fingerprint": "pay"})
    writer.info("outside a request")
    failed, outside = read_all(path)
    assert (failed.trace_id, failed.span_id) == (request.trace_id, request.span_id)
    assert (failed.user_id, failed.org_id, failed.session_id) == ("u-1", "o-1", "s-1")
    assert (failed.level, failed.logger, failed.message) == (
        logging.ERROR,
        writer.name,
        "payment failed",
    )
    assert failed.attributes == {"order": 42}
    assert failed.fingerprint == "pay"
    assert failed.exception_type == "TimeoutError"
    assert failed.exception is not None
    assert failed.exception.endswith("TimeoutError: gateway slow after 3012 ms")
    assert abs(failed.time - request.start) < 1
    assert (outside.trace_id, outside.user_id, outside.attributes) == (0, None, None)


def test_uvicorn_lines_a_custom_pattern_and_lines_in_no_format(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_text(
        "a line in no format\n"
        '  File "/srv/app/cli.py", line 3, in main\n'
        'INFO:     127.0.0.1:51234 - "GET /items/7?full=1 HTTP/1.1" 404 Not Found\n'
        "WARNING:  Invalid HTTP request received.\n"
        "2026-12-01T10:00:00+00:00 [error] billing: card declined\n"
        "another line in no format, after one in a known format, continues it\n",
        encoding="utf-8",
    )
    lone, access, warning, custom = read_all(
        path, r"^(?P<time>\S+) \[(?P<level>\w+)\] (?P<logger>\w+): (?P<message>.*)$"
    )
    assert (access.logger, access.level) == ("uvicorn.access", logging.INFO)
    assert access.attributes == {
        "client": "127.0.0.1:51234",
        "method": "GET",
        "target": "/items/7?full=1",
        "http_version": "1.1",
        "status_code": 404,
    }
    assert (warning.logger, warning.level, warning.message) == (
        "uvicorn.error",
        logging.WARNING,
        "Invalid HTTP request received.",
    )
    assert (custom.logger, custom.level, custom.message) == (
        "billing",
        logging.ERROR,
        "card declined\nanother line in no format, after one in a known format, continues it",
    )
    assert custom.time == datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    # A line in no known format is a record of its own; an indented line still continues it.
    assert (lone.logger, lone.level) == ("mixed.log", logging.INFO)
    assert lone.message == 'a line in no format\n  File "/srv/app/cli.py", line 3, in main'
