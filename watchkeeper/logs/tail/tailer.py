"""Followed files made into log records in the recorder, with offsets kept once written.

Each file's offset moves past a record only once the record is complete (the next record has
started, the file was rotated or truncated, or nothing came for a moment), and is saved only once
the recorder has written everything submitted before it: after a restart, reading resumes at the
first record not yet stored, so each record is stored once (at least once if the process dies
between a write and the save that follows it). Reading waits for the logs' share of the buffer
rather than dropping: a file can be read later, a request cannot.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from watchkeeper.logs.tail.follow import FollowedFile, Position
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.parse import Entry, LineParser, continues
from watchkeeper.recording.recorder import Recorder

logger = logging.getLogger("watchkeeper.tail")

POLL_SECONDS = 0.2
IDLE_SECONDS = 0.5
"""A record still open after this long without a new line is complete: its writer is done."""
CHECKPOINT_SECONDS = 1.0
FLUSH_TIMEOUT_SECONDS = 30.0


@dataclass(slots=True)
class _Source:
    file: FollowedFile
    parser: LineParser
    name: str
    pending: Entry | None = None
    pending_end: int = 0
    committed: int | None = None
    saved: Position | None = None
    quiet_since: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class TailCounts:
    lines: int = 0
    records: int = 0


class Tailer:
    def __init__(
        self,
        recorder: Recorder,
        paths: list[Path],
        offsets: Offsets,
        pattern: re.Pattern[str] | None = None,
        from_end: bool = False,
    ) -> None:
        self.recorder = recorder
        self.offsets = offsets
        self.counts = TailCounts()
        self._sources: list[_Source] = []
        for given in paths:
            path = given.expanduser().absolute()
            resume = offsets.load(path)
            self._sources.append(
                _Source(
                    FollowedFile(path, resume, from_end),
                    LineParser(path.name, pattern),
                    str(path),
                    saved=resume,
                )
            )
        self._last_checkpoint = time.monotonic()

    def poll(self) -> int:
        """Read every file once; the number of lines read."""
        read_lines = 0
        for source in self._sources:
            read_lines += self._read(source)
        self.counts.lines += read_lines
        return read_lines

    def _read(self, source: _Source) -> int:
        read = source.file.read()
        now = time.monotonic()
        parser = source.parser
        for line, end in zip(read.lines, read.ends, strict=True):
            entry = parser.start(line)
            if entry is None:
                pending = source.pending
                if pending is not None and continues(pending, line):
                    pending.more.append(line)
                    source.pending_end = end
                    continue
                entry = parser.lone(line)
            self._complete(source)
            source.pending, source.pending_end = entry, end
            if entry.complete:
                self._complete(source)
        if read.boundary:
            self._complete(source)
            position = source.file.position
            source.committed = position.offset if position is not None else None
        if read.lines or read.boundary:
            source.quiet_since = now
        elif source.pending is not None and now - source.quiet_since >= IDLE_SECONDS:
            self._complete(source)
        return len(read.lines)

    def _complete(self, source: _Source) -> None:
        entry, source.pending = source.pending, None
        if entry is None:
            return
        record = entry.record(source.name)
        recorder = self.recorder
        while not recorder.takes_logs and recorder.running:
            recorder.flush(FLUSH_TIMEOUT_SECONDS)
        recorder.submit_log(record)
        self.counts.records += 1
        source.committed = source.pending_end

    def checkpoint(self) -> bool:
        """Save each file's offset once what was read before it is written; ``False`` if the
        recorder could not write in time (the offsets are saved at the next checkpoint)."""
        self._last_checkpoint = time.monotonic()
        due: list[tuple[_Source, Position]] = []
        for source in self._sources:
            position = source.file.position
            if position is None or source.committed is None:
                continue
            committed = Position(position.device, position.inode, source.committed)
            if committed != source.saved:
                due.append((source, committed))
        if not due:
            return True
        if not self.recorder.flush(FLUSH_TIMEOUT_SECONDS):
            return False
        for source, position in due:
            self.offsets.save(source.file.path, position)
            source.saved = position
        return True

    def run(self, stop: threading.Event) -> None:
        """Follow the files until ``stop`` is set; then record what was read, and checkpoint."""
        try:
            while not stop.is_set():
                read = self.poll()
                if time.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS:
                    self.checkpoint()
                if not read:
                    stop.wait(POLL_SECONDS)
        finally:
            self.close()

    def drain(self) -> None:
        """Read every file to its current end and record it all (``watchkeeper tail --once``)."""
        while self.poll():
            pass
        self.close()

    def close(self) -> None:
        for source in self._sources:
            self._complete(source)
        self.checkpoint()
        for source in self._sources:
            source.file.close()
