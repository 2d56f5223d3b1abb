"""structlog's events recorded as the logging handler records the standard library's.

Put :class:`StructlogCapture` in structlog's processor chain before the renderer; it returns the
event unchanged, so the app's own output is as it was.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from structlog.typing import EventDict, WrappedLogger

from watchkeeper.logs.capture import build_record, is_own
from watchkeeper.logs.levels import level_of
from watchkeeper.logs.records import (
    MESSAGE_LIMIT,
    ExcInfo,
    bounded_exception,
    format_exception,
    frames_of,
)
from watchkeeper.model.events import PROTECTED_LEVELS
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder

# Keys structlog's own processors add: fields of the record, not attributes.
_OWN_KEYS = frozenset({"event", "level", "logger", "timestamp", "exc_info", "exception"})


class StructlogCapture:
    """A structlog processor recording each event at or above WATCHKEEPER_LOG_LEVEL.

    ``recorder`` defaults to the process's (the one ``instrument()`` set), read per event.
    """

    def __init__(self, recorder: Recorder | None = None) -> None:
        self._recorder = recorder

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        recorder = self._recorder or get_recorder()
        try:
            self._record(recorder, logger, method_name, event_dict)
        except Exception as error:
            recorder.report_internal_error("recording a structlog event", error, background=True)
        return event_dict

    def _record(
        self, recorder: Recorder, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> None:
        settings = recorder.settings
        if not settings.log_capture or not recorder.enabled:
            return
        level = level_of(str(event_dict.get("level", method_name))) or level_of(method_name)
        if level is None:
            level = logging.INFO
        threshold = level_of(settings.log_level) or logging.INFO
        if level < threshold and level not in PROTECTED_LEVELS:
            return
        name = str(event_dict.get("logger") or getattr(logger, "name", None) or "structlog")
        if is_own(name):
            return
        attributes: dict[str, Any] | None = {
            key: value for key, value in event_dict.items() if key not in _OWN_KEYS
        }
        exception_type = exception = None
        frames = None
        exc_info = _exc_info(event_dict, method_name)
        if exc_info is not None:
            exception_type = exc_info[0].__qualname__
            exception = format_exception(exc_info)
            frames = frames_of(exc_info[1])
        elif isinstance(event_dict.get("exception"), str):
            # format_exc_info ran earlier in the chain: only its text is left.
            exception = bounded_exception(event_dict["exception"])
        recorder.submit_log(
            build_record(
                time=time.time(),
                level=level,
                logger=name,
                message=str(event_dict.get("event", ""))[:MESSAGE_LIMIT],
                attributes=attributes or None,
                exception_type=exception_type,
                exception=exception,
                frames=frames,
            )
        )


def _exc_info(event_dict: EventDict, method_name: str) -> ExcInfo | None:
    given = event_dict.get("exc_info", method_name == "exception")
    if isinstance(given, BaseException):
        return (type(given), given, given.__traceback__)
    if isinstance(given, tuple) and len(given) == 3 and given[1] is not None:
        return given
    if given is True:
        current = sys.exc_info()
        if current[1] is not None:
            return current
    return None
