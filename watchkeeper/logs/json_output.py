"""The app's log records as JSON lines: one object per record, with its trace and identity.

``{"time", "level", "logger", "message", "trace_id", "span_id", "user_id", "org_id",
"session_id", "exception", "extra"}``; ids and identity only when a span is current, exception and
extra only when the record has them. ``tail`` reads these lines back field for field.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from watchkeeper.logs.levels import level_of, register_levels
from watchkeeper.logs.records import exc_info_of, exception_text, extra_fields, message_of
from watchkeeper.recording.spans import current_span


def trace_hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def span_hex(span_id: int) -> str:
    return format(span_id, "016x")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (UTC time in ISO 8601, milliseconds)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message_of(record),
        }
        active = current_span.get()
        if active is not None:
            document["trace_id"] = trace_hex(active.trace_id)
            document["span_id"] = span_hex(active.span_id)
            for name in ("user_id", "org_id", "session_id"):
                value = getattr(active, name)
                if value is not None:
                    document[name] = value
        exc_info = exc_info_of(record)
        if exc_info is not None:
            document["exception"] = exception_text(record, exc_info)
        if record.stack_info:
            document["stack"] = record.stack_info
        extra = extra_fields(record)
        if extra:
            document["extra"] = extra
        return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure(level: int | str = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Have the root logger write JSON lines to ``stream`` (standard error by default).

    For an app's own set-up: the root logger's other handlers are left as they are; the handler
    is returned so it can be removed again.
    """
    register_levels()
    number = level if isinstance(level, int) else level_of(level)
    if number is None:
        raise ValueError(f"unknown logging level {level!r}; for example INFO or WARNING")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(number)
    return handler
