"""What a standard library ``logging.LogRecord`` holds beyond its own fields, read once for both
the capture handler and the JSON formatter: the app's ``extra`` fields and its exception."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from watchkeeper.model.events import Frames
from watchkeeper.recording.spans import stack_frames

MESSAGE_LIMIT = 32_000
"""Characters of a message kept; a runaway message must not fill the buffer's memory."""
EXCEPTION_LIMIT = 64_000
"""Characters of a formatted traceback kept (its end, where the exception is, is kept)."""

# Every attribute a plain record has (taskName on 3.12, asctime and message once a formatter has
# run): whatever else a record has came from the app's `extra`.
STANDARD_FIELDS = frozenset({*logging.makeLogRecord({}).__dict__, "message", "asctime", "taskName"})

_format_exception = logging.Formatter().formatException

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def extra_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """The app's ``extra`` fields of ``record``, or ``None`` when it gave none."""
    fields = record.__dict__
    # One C-level set difference: most records have no extra at all.
    names = fields.keys() - STANDARD_FIELDS
    if not names:
        return None
    return {name: fields[name] for name in names}


def message_of(record: logging.LogRecord) -> str:
    """The record's message with its arguments; the bare template if they do not fit it (an
    app's bad call is not Watchkeeper's to raise)."""
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    return message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT]


def exc_info_of(record: logging.LogRecord) -> ExcInfo | None:
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None or exc_info[1] is None:
        return None
    return exc_info


def exception_text(record: logging.LogRecord, exc_info: ExcInfo) -> str:
    # A formatter that ran before (a console handler) left the text on the record.
    return bounded_exception(record.exc_text or _format_exception(exc_info))


def format_exception(exc_info: ExcInfo) -> str:
    return bounded_exception(_format_exception(exc_info))


def bounded_exception(text: str) -> str:
    # The end is kept: the exception itself is on the last line.
    return text if len(text) <= EXCEPTION_LIMIT else text[-EXCEPTION_LIMIT:]


def frames_of(error: BaseException) -> Frames | None:
    """(module, function) of each frame of ``error``'s traceback, innermost last, as a failed
    span's."""
    return stack_frames(error.__traceback__)
