"""The app's logging records, recorded with the trace, span and identity current when written.

A handler on the root logger, installed when the runtime starts and removed when it stops, so
the host's logging is as it was once Watchkeeper is gone. Its ``handle`` takes no lock and does
no I/O: it builds one event and submits it to the recorder's buffer (the logs' share of it), and
anything that goes wrong inside is contained. Records of Watchkeeper's own loggers
(``watchkeeper…``) are never taken, so its own warnings cannot feed back into it. An app with no
logging set up still sees its warnings on standard error, as the standard library's last resort
would have printed them without this handler.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter

from watchkeeper.config import Settings
from watchkeeper.logs.levels import level_of, register_levels
from watchkeeper.logs.records import (
    exc_info_of,
    exception_text,
    extra_fields,
    frames_of,
    message_of,
)
from watchkeeper.model.events import PROTECTED_LEVELS, LogRecord
from watchkeeper.model.grouping import FINGERPRINT, fingerprint_of
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import log_here

OWN_LOGGERS = "watchkeeper"
STACK = "stack"
"""The attribute holding a record's ``stack_info`` (``logger.info(..., stack_info=True)``)."""


def build_record(
    *,
    time: float,
    level: int,
    logger: str,
    message: str,
    attributes: dict[str, Any] | None,
    exception_type: str | None = None,
    exception: str | None = None,
    frames: tuple[tuple[str, str], ...] | None = None,
) -> LogRecord:
    """A log event tied to the current span (if any); an explicit fingerprint taken out of the
    attributes. Shared by the logging handler and the structlog processor."""
    fingerprint = None
    if attributes is not None and FINGERPRINT in attributes:
        fingerprint = fingerprint_of(attributes.pop(FINGERPRINT))
        attributes = attributes or None
    return log_here(
        time, level, logger, message, attributes, exception_type, exception, frames, fingerprint
    )


def is_own(logger: str) -> bool:
    return logger.startswith(OWN_LOGGERS)


class CaptureHandler(logging.Handler):
    """Records the app's log records at or above ``level`` (AUDIT and SECURITY always)."""

    def __init__(self, recorder: Recorder, level: int) -> None:
        # The handler's own level stays NOTSET: AUDIT and SECURITY pass whatever ``level`` is.
        super().__init__()
        self.recorder = recorder
        self.threshold = level

    def createLock(self) -> None:
        # No lock: handle() only appends to the recorder's buffer, which is thread-safe.
        self.lock = None

    def handle(self, record: logging.LogRecord) -> bool:
        level = record.levelno
        if (level < self.threshold and level not in PROTECTED_LEVELS) or is_own(record.name):
            return False
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        last_resort = logging.lastResort
        if last_resort is not None and level >= last_resort.level and self._alone(record):
            # Without this handler the standard library would have printed the record on
            # standard error (an app with no logging set up): it still does.
            last_resort.handle(record)
        return True

    def _alone(self, record: logging.LogRecord) -> bool:
        """Whether no handler but this one sees ``record`` (the walk Logger.callHandlers makes)."""
        found = logging.Logger.manager.loggerDict.get(record.name)
        current: logging.Logger | None = (
            found if isinstance(found, logging.Logger) else logging.getLogger()
        )
        while current is not None:
            if any(handler is not self for handler in current.handlers):
                return False
            current = current.parent if current.propagate else None
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.recorder.submit_log(self._event(record))
        except Exception as error:
            self.recorder.report_internal_error("recording a log record", error, background=True)

    def _event(self, record: logging.LogRecord) -> LogRecord:
        attributes = extra_fields(record)
        if record.stack_info:
            attributes = attributes or {}
            attributes[STACK] = record.stack_info
        exc_info = exc_info_of(record)
        if exc_info is None:
            return build_record(
                time=record.created,
                level=record.levelno,
                logger=record.name,
                message=message_of(record),
                attributes=attributes,
            )
        return build_record(
            time=record.created,
            level=record.levelno,
            logger=record.name,
            message=message_of(record),
            attributes=attributes,
            exception_type=exc_info[0].__qualname__,
            exception=exception_text(record, exc_info),
            frames=frames_of(exc_info[1]),
        )


class LogCaptureComponent:
    """Puts a :class:`CaptureHandler` on the root logger while the runtime runs."""

    name = "log capture"

    def __init__(self, recorder: Recorder, settings: Settings) -> None:
        self.handler = CaptureHandler(recorder, level_of(settings.log_level) or logging.INFO)
        self._lock = threading.Lock()

    def router(self) -> APIRouter | None:
        return None

    async def start(self) -> None:
        register_levels()
        with self._lock:
            root = logging.getLogger()
            if self.handler not in root.handlers:
                root.addHandler(self.handler)

    async def stop(self) -> None:
        with self._lock:
            logging.getLogger().removeHandler(self.handler)
