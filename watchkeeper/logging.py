"""``watchkeeper.logging``: the public face of Watchkeeper's log support.

- :func:`configure`: the app's logs as JSON lines, usable without the rest of Watchkeeper.
- :func:`audit` and :func:`security`: records at the AUDIT and SECURITY levels, which are never
  dropped before other levels.
- :func:`structlog_processor`: structlog's events recorded as ``instrument()`` records the
  standard library's (needs the ``structlog`` extra).

The standard library's ``logging`` is imported absolutely everywhere in Watchkeeper, so this
module's name shadows nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchkeeper.logs.json_output import JsonFormatter, configure
from watchkeeper.logs.levels import AUDIT, SECURITY, audit, register_levels, security

if TYPE_CHECKING:
    from watchkeeper.logs.structlog_capture import StructlogCapture
    from watchkeeper.recording.recorder import Recorder

__all__ = [
    "AUDIT",
    "SECURITY",
    "JsonFormatter",
    "audit",
    "configure",
    "register_levels",
    "security",
    "structlog_processor",
]


def structlog_processor(recorder: Recorder | None = None) -> StructlogCapture:
    """A structlog processor that records each event (put it before the renderer)."""
    try:
        from watchkeeper.logs.structlog_capture import StructlogCapture  # noqa: PLC0415 - the optional extra
    except ImportError as error:
        raise ImportError(
            "watchkeeper.logging.structlog_processor() needs structlog: "
            "pip install 'watchkeeper[structlog]'"
        ) from error
    return StructlogCapture(recorder)
