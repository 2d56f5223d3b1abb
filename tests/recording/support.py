"""Recorders for the recording tests: strict, quick to flush, and with no disk spool unless a
test asks for one, so batches wait in memory only."""

from __future__ import annotations

from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink


def make_recorder(sink: MemorySink, **settings: object) -> Recorder:
    options: dict[str, object] = {
        "flush_interval": 0.02,
        "raise_internal_errors": True,
        "spool_max_bytes": 0,
    }
    options.update(settings)
    return Recorder(load_settings(**options), sink=sink)
