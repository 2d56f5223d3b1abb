"""``watchkeeper serve`` following WATCHKEEPER_TAIL_PATHS, on a thread of its own."""

from __future__ import annotations

import asyncio
import re
import threading

from fastapi import APIRouter

from watchkeeper.config import Settings
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.tailer import Tailer
from watchkeeper.recording.recorder import Recorder

STOP_SECONDS = 60.0


class TailComponent:
    name = "tail"

    def __init__(self, recorder: Recorder, settings: Settings) -> None:
        pattern = re.compile(settings.tail_pattern) if settings.tail_pattern else None
        self.tailer = Tailer(
            recorder, list(settings.tail_paths), Offsets(settings.tail_state_directory), pattern
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def router(self) -> APIRouter | None:
        return None

    async def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.tailer.run, args=(self._stop,), name="watchkeeper-tail", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        # The last records and offsets are written through the recorder, which the runtime
        # stops only after its components; off the loop, which may still be serving.
        await asyncio.to_thread(thread.join, STOP_SECONDS)
