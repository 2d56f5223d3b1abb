"""A collector's intake running in this test process, on its own event loop and thread."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from watchkeeper.collector.intake import IntakeComponent
from watchkeeper.config import Address
from watchkeeper.recording.recorder import Recorder


def short_directory() -> Path:
    """A folder for sockets: a Unix socket's path must stay under about 100 bytes."""
    return Path(tempfile.mkdtemp(prefix="wk-", dir="/tmp"))


class RunningIntake:
    def __init__(
        self, recorder: Recorder, addresses: Sequence[Address], keys: Sequence[str] = ()
    ) -> None:
        self.recorder = recorder
        self.intake = IntakeComponent(recorder, addresses, keys)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> RunningIntake:
        self.recorder.start()
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.intake.start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        """Stop taking events (cutting the senders off), then flush what was taken."""
        asyncio.run_coroutine_threadsafe(self.intake.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self.recorder.stop()
