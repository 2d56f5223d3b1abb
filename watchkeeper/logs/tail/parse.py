"""Lines of log files made into log records: JSON lines, the standard library's default formats,
uvicorn's, or an app's own regular expression; a traceback's lines joined to the record above.

A line either starts a record (it matches a format), or continues the one before it: any line
after a record in a known format (a message of several lines, a traceback), and after a line in
no known format an indented line, a traceback's header, its exception line and the blank line
between chained tracebacks. A line that does neither is a record of its own, its whole text the
message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from watchkeeper.logs.levels import level_of
from watchkeeper.logs.records import MESSAGE_LIMIT, bounded_exception
from watchkeeper.model.events import Frames, LogRecord
from watchkeeper.model.grouping import FINGERPRINT

TRACEBACK = "Traceback (most recent call last):"
_CHAIN_LINES = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)
_FRAME = re.compile(r'^\s+File "(?P<path>[^"]+)", line \d+, in (?P<function>\S+)')
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::(?: .*)?)?$")

_LEVEL_NAMES = "DEBUG|INFO|WARNING|WARN|AUDIT|ERROR|SECURITY|CRITICAL|FATAL"
PYTHON_BASIC = re.compile(rf"^(?P<level>{_LEVEL_NAMES}):(?P<logger>[^:\s]*):(?P<message>.*)$")
"""``logging.basicConfig()``'s format: ``%(levelname)s:%(name)s:%(message)s``."""
PYTHON_COOKBOOK = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:,\d{3})?) - (?P<logger>\S+) - "
    rf"(?P<level>{_LEVEL_NAMES}) - (?P<message>.*)$"
)
"""The logging documentation's ``%(asctime)s - %(name)s - %(levelname)s - %(message)s``."""
UVICORN_ACCESS = re.compile(
    rf"^(?P<level>{_LEVEL_NAMES}):\s+(?P<client>\S+) - "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/(?P<http_version>[\d.]+)" (?P<status_code>\d{3})'
    r"(?: .*)?$"
)
"""uvicorn's access log: ``INFO:     127.0.0.1:51234 - "GET /items HTTP/1.1" 200 OK``."""
UVICORN = re.compile(rf"^(?P<level>{_LEVEL_NAMES}):\s+(?P<message>.*)$")
"""uvicorn's own lines: ``INFO:     Application startup complete.``"""

_ASCTIME = "%Y-%m-%d %H:%M:%S,%f"
_TIME_KEYS = ("time", "timestamp", "@timestamp", "ts", "asctime", "created")
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl", "log.level")
_LOGGER_KEYS = ("logger", "name", "logger_name", "log.logger")
_MESSAGE_KEYS = ("message", "msg", "event")
_EXCEPTION_KEYS = ("exception", "exc_info", "stack_trace", "error.stack")
_IDENTITY_KEYS = ("user_id", "org_id", "session_id")
_TRACE_KEYS = ("trace_id", "traceId", "trace.id")
_SPAN_KEYS = ("span_id", "spanId", "span.id")
_FIELD_KEYS = frozenset(
    {
        *_TIME_KEYS,
        *_LEVEL_KEYS,
        *_LOGGER_KEYS,
        *_MESSAGE_KEYS,
        *_EXCEPTION_KEYS,
        *_IDENTITY_KEYS,
        *_TRACE_KEYS,
        *_SPAN_KEYS,
        FINGERPRINT,
        "extra",
    }
)
_NAMED_GROUPS = frozenset({"time", "level", "logger", "message"})


@dataclass(slots=True)
class Entry:
    """A record being read: its first line's fields, and the lines that continue it."""

    time: float
    level: int
    logger: str
    message: str
    attributes: dict[str, Any] | None = None
    trace_id: int = 0
    span_id: int = 0
    identity: dict[str, str] = field(default_factory=dict)
    exception: str | None = None
    fingerprint: str | None = None
    more: list[str] = field(default_factory=list)
    complete: bool = False
    """A JSON line is a whole record: nothing continues it."""
    formatted: bool = True
    """Read in a known format: the lines up to the next record are all its own."""

    def record(self, source: str) -> LogRecord:
        message = self.message
        exception = self.exception
        if self.more:
            text = "\n".join(self.more).rstrip()
            start = text.find(TRACEBACK)
            if start < 0:
                message = f"{message}\n{text}"
            else:
                if start > 0:
                    message = f"{message}\n{text[:start].rstrip()}"
                exception = text[start:]
        exception_type = frames = None
        if exception:
            exception = bounded_exception(exception)
            exception_type, frames = _exception_details(exception)
        return LogRecord(
            self.time,
            self.level,
            self.logger,
            message[:MESSAGE_LIMIT],
            self.trace_id,
            self.span_id,
            self.identity.get("user_id"),
            self.identity.get("org_id"),
            self.attributes or None,
            self.identity.get("session_id"),
            exception_type,
            exception,
            frames,
            self.fingerprint,
            source,
        )


class LineParser:
    """Reads the lines of one file; ``pattern`` is tried before the built-in formats."""

    def __init__(self, default_logger: str, pattern: re.Pattern[str] | None = None) -> None:
        self.default_logger = default_logger
        self._formats: list[tuple[re.Pattern[str], str | None]] = [
            *([(pattern, None)] if pattern is not None else []),
            (PYTHON_COOKBOOK, None),
            (UVICORN_ACCESS, "uvicorn.access"),
            (PYTHON_BASIC, None),
            (UVICORN, "uvicorn.error"),
        ]

    def start(self, line: str) -> Entry | None:
        """The record ``line`` starts, or ``None`` when it is no record's first line."""
        if line.startswith((" ", "\t")) or not line:
            return None
        if line.startswith("{"):
            entry = _json_entry(line, self.default_logger)
            if entry is not None:
                return entry
        for pattern, logger in self._formats:
            match = pattern.match(line)
            if match is None:
                continue
            entry = self._entry(match, logger)
            if entry is not None:
                return entry
        return None

    def _entry(self, match: re.Match[str], logger: str | None) -> Entry | None:
        fields = match.groupdict()
        level_text = fields.get("level")
        level = logging.INFO if level_text is None else level_of(level_text)
        if level is None:
            return None
        attributes = {
            name: value
            for name, value in fields.items()
            if name not in _NAMED_GROUPS and value is not None
        }
        if "status_code" in attributes:
            attributes["status_code"] = int(attributes["status_code"])
        return Entry(
            time=_time(fields.get("time")),
            level=level,
            logger=fields.get("logger") or logger or self.default_logger,
            message=fields.get("message") or match.group(0),
            attributes=attributes or None,
        )

    def lone(self, line: str) -> Entry:
        """A line in no known format: a record of its own."""
        return Entry(
            time=time.time(),
            level=logging.INFO,
            logger=self.default_logger,
            message=line,
            formatted=False,
        )


def continues(entry: Entry, line: str) -> bool:
    """Whether ``line``, which starts no record, belongs to the record ``entry`` started."""
    if entry.complete:
        return False
    if entry.formatted or line.startswith((" ", "\t", TRACEBACK, *_CHAIN_LINES)):
        return True
    if not entry.more:
        return False
    in_traceback = any(part.startswith(TRACEBACK) for part in entry.more)
    # The exception's own line, and the blank line before a chained traceback's header.
    return in_traceback and (not line.strip() or _EXCEPTION_LINE.match(line) is not None)


def _exception_details(text: str) -> tuple[str | None, Frames | None]:
    """The exception's class name and the last traceback's frames, from a traceback's text."""
    last = text[text.rfind(TRACEBACK) :] if TRACEBACK in text else text
    frames = tuple(
        (_module_of(match["path"]), match["function"])
        for match in map(_FRAME.match, last.splitlines())
        if match is not None
    )
    exception_type = None
    for line in reversed(last.splitlines()):
        if line.strip() and not line.startswith((" ", "\t")):
            found = _EXCEPTION_LINE.match(line.split(":", 1)[0])
            if found is not None and line != TRACEBACK:
                exception_type = found["type"].rsplit(".", 1)[-1]
            break
    return exception_type, frames or None


def _module_of(path: str) -> str:
    # A file's path stands for its module: installed packages by their import name, the app's
    # own files by their path (the tail does not know the app's import root).
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            break
    return path.removesuffix(".py").strip("/").replace("/", ".")


def _json_entry(line: str, default_logger: str) -> Entry | None:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    level = _first(document, _LEVEL_KEYS)
    number = level if isinstance(level, int) else level_of(str(level)) if level else None
    attributes: dict[str, Any] = {}
    extra = document.get("extra")
    if isinstance(extra, Mapping):
        attributes.update(extra)
    attributes.update((key, value) for key, value in document.items() if key not in _FIELD_KEYS)
    fingerprint = attributes.pop(FINGERPRINT, None) or document.get(FINGERPRINT)
    exception = _first(document, _EXCEPTION_KEYS)
    return Entry(
        time=_time(_first(document, _TIME_KEYS)),
        level=number or logging.INFO,
        logger=str(_first(document, _LOGGER_KEYS) or default_logger),
        message=str(_first(document, _MESSAGE_KEYS) or ""),
        attributes=attributes or None,
        trace_id=_hex_id(_first(document, _TRACE_KEYS)),
        span_id=_hex_id(_first(document, _SPAN_KEYS)),
        identity={
            key: str(document[key]) for key in _IDENTITY_KEYS if document.get(key) is not None
        },
        exception=str(exception) if isinstance(exception, str) and exception else None,
        fingerprint=None if fingerprint is None else str(fingerprint),
        complete=True,
    )


def _first(document: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = document.get(key)
        if value is not None:
            return value
    return None


def _hex_id(value: object) -> int:
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            return 0
    return 0


def _time(value: object) -> float:
    """Seconds since the epoch from a number (seconds or milliseconds), ISO 8601 or asctime;
    the time of reading when there is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str) and value:
        text = value.strip()
        try:
            return datetime.fromisoformat(text).timestamp()  # naive: local time, as asctime
        except ValueError:
            pass
        try:
            return datetime.strptime(text, _ASCTIME).timestamp()
        except ValueError:
            pass
        try:
            return _time(float(text))
        except ValueError:
            pass
    return time.time()
