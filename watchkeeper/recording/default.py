"""The process-wide recorder that ``watchkeeper.instrument`` and the decorators use.

It is created on first use, not at import, so importing Watchkeeper has no side effects and a
test can install its own with :func:`set_recorder`.
"""

from __future__ import annotations

import threading

from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import Recorder

_lock = threading.Lock()
_recorder: Recorder | None = None


def get_recorder() -> Recorder:
    """The process's recorder, built from the environment's settings the first time."""
    global _recorder  # noqa: PLW0603 - one recorder per process is the point
    recorder = _recorder
    if recorder is not None:
        return recorder
    with _lock:
        if _recorder is None:
            _recorder = Recorder(load_settings())
        return _recorder


def set_recorder(recorder: Recorder | None) -> Recorder | None:
    """Install ``recorder`` as the process's recorder; return the one it replaced."""
    global _recorder
    with _lock:
        previous, _recorder = _recorder, recorder
    return previous
