"""Batches the store could not take yet, kept in local files so an outage or a restart loses none.

Built batches wait in memory first (:class:`~watchkeeper.recording.waiting.WaitingBatches`);
only what overflows it, and what is still waiting when the recorder stops, comes here. A short
outage therefore costs no disk I/O, and a long one, or a restart in the middle of one, costs no
events. The idea is Logfire's exporter's disk retry queue.

One file per batch, named ``<nanoseconds>-<pid>-<sequence>-<events>.wkb`` so that names sort
in the order the batches were spooled, and the events a file holds can be counted without
reading it (when it is dropped for space, or found corrupt). A file is written under a hidden
temporary name, synced and renamed, so a crash leaves either a whole file or none.

Several processes may share one directory (``uvicorn --workers``, or a restarted app finding
its predecessor's files). A file is replayed by whoever holds an exclusive ``flock`` on it, and
deleted before the lock is released; a process that obtains the lock on a file already deleted
sees it has no links left and leaves it. A crash between the store's commit and the deletion
replays that batch once more: delivery is at least once, never silently zero.

Contents are the events as :mod:`~watchkeeper.recording.codec` writes them, compressed (zlib,
whose checksum also catches a damaged file). Rollups and sessions are rebuilt from the events on
replay, exactly as they were built the first time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from watchkeeper.model.batch import Batch
from watchkeeper.model.rollups import build_rollups
from watchkeeper.model.sessions import build_sessions
from watchkeeper.recording.codec import UnreadableEvents, decode_events, encode_events
from watchkeeper.recording.stats import app_events

SUFFIX = ".wkb"
MAGIC = b"WKS1"

RESCAN_SECONDS = 2.0
"""How often a process with no files of its own looks for files other processes left."""

STALE_TEMPORARY_SECONDS = 3600.0
"""Age at which a temporary file is taken for the remains of a process that died writing it."""


class CorruptSpoolFile(ValueError):
    """A spool file that cannot be read back into a batch."""


@dataclass(frozen=True, slots=True)
class SpoolFile:
    path: Path
    events: int
    size: int


def events_in(name: str) -> int | None:
    """The event count a spool file's name records, or ``None`` if it is no spool file."""
    if name.startswith(".") or not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[3])


class Claim:
    """A spool file this process holds the lock on, and the batch read from it."""

    def __init__(self, file: SpoolFile, descriptor: int, batch: Batch) -> None:
        self.file = file
        self.batch = batch
        self._descriptor = descriptor

    def written(self) -> None:
        """The batch is stored: delete the file, then let the lock go."""
        with contextlib.suppress(FileNotFoundError):
            self.file.path.unlink()
        os.close(self._descriptor)

    def release(self) -> None:
        """The store refused the batch: keep the file for a later attempt, by anyone."""
        os.close(self._descriptor)


class Spool:
    """The spool directory as one writer thread of one process sees it.

    ``on_lost(reason, events)`` hears of files dropped to stay within ``max_bytes``
    (``"spool_full"``) and files that could not be read (``"spool_corrupt"``).
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        on_lost: Callable[[str, int], None],
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._on_lost = on_lost
        self._sequence = 0
        # Known files, oldest first: what this process spooled plus what the last scan found.
        self._files: list[SpoolFile] = []
        self._scanned_at = -RESCAN_SECONDS
        self.scanned = False
        """Whether the directory was looked at yet: until then, files may wait unseen."""
        self.events = 0
        """Events in the files known to this process (read by other threads for stats)."""

    @property
    def files(self) -> int:
        """Files known to wait for the store (read by other threads: one ``len``)."""
        return len(self._files)

    # -- writing -------------------------------------------------------------------------------

    def spill(self, batch: Batch) -> None:
        """Write ``batch`` as the newest file, then drop the oldest files beyond the size cap.

        Raises :class:`OSError` if the file cannot be written (the caller counts the batch).
        """
        payload = encode(batch)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        events = app_events(batch)
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:010d}-{events}{SUFFIX}"
        path = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._files.append(SpoolFile(path, events, len(payload)))
        self.events += events
        self._enforce_cap()

    def _enforce_cap(self) -> None:
        # Everyone's files count against the cap, so look at the directory, not just ours.
        files = self._scan()
        total = sum(file.size for file in files)
        for file in files:
            if total <= self.max_bytes or file is files[-1]:
                break
            if self._delete_unclaimed(file):
                total -= file.size
                self._on_lost("spool_full", file.events)
        self._adopt(files)

    def _delete_unclaimed(self, file: SpoolFile) -> bool:
        """Delete ``file`` unless another process is replaying it (it will delete it itself)."""
        try:
            descriptor = os.open(file.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(descriptor).st_nlink == 0:
                return False
            file.path.unlink()
            return True
        except (BlockingIOError, FileNotFoundError):
            return False
        finally:
            os.close(descriptor)

    # -- replaying -----------------------------------------------------------------------------

    def has_files(self) -> bool:
        """Whether some spooled batch waits; looks at the directory now and then for others'."""
        if not self._files and time.monotonic() - self._scanned_at >= RESCAN_SECONDS:
            self._adopt(self._scan())
        return bool(self._files)

    def claim_oldest(self) -> Claim | None:
        """Lock and read the oldest file nobody else holds; ``None`` when there is none.

        Files held by others are forgotten (a later scan finds them if they come back); a
        corrupt file is deleted and its events reported lost.
        """
        while self._files:
            file = self._files.pop(0)
            self.events -= file.events
            claim = self._claim(file)
            if claim is not None:
                return claim
        return None

    def give_back(self, claim: Claim) -> None:
        """Keep a claimed file first in line after the store refused its batch."""
        claim.release()
        self._files.insert(0, claim.file)
        self.events += claim.file.events

    def _claim(self, file: SpoolFile) -> Claim | None:
        try:
            descriptor = os.open(file.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(descriptor).st_nlink == 0:
                raise FileNotFoundError(file.path)  # replayed and deleted since it was listed
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                payload = handle.read()
            batch = decode(payload)
        except (BlockingIOError, FileNotFoundError):
            os.close(descriptor)
            return None
        except CorruptSpoolFile:
            with contextlib.suppress(FileNotFoundError):
                file.path.unlink()
            os.close(descriptor)
            self._on_lost("spool_corrupt", file.events)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return Claim(file, descriptor, batch)

    def _scan(self) -> list[SpoolFile]:
        self._scanned_at = time.monotonic()
        self.scanned = True
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            events = events_in(entry.name)
            if events is None:
                self._remove_if_stale(entry)
                continue
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            found.append(SpoolFile(Path(entry.path), events, size))
        found.sort(key=lambda file: file.path.name)
        return found

    def _remove_if_stale(self, entry: os.DirEntry[str]) -> None:
        # Writing a file takes milliseconds: a temporary file an hour old was left by a crash,
        # and would otherwise hold its space for good.
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
            return
        with contextlib.suppress(OSError):
            if time.time() - entry.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                os.unlink(entry.path)

    def _adopt(self, files: list[SpoolFile]) -> None:
        self._files = [file for file in files if file.path.exists()]
        self.events = sum(file.events for file in self._files)


# -- the file format ---------------------------------------------------------------------------


def encode(batch: Batch) -> bytes:
    # The document's first byte (its encoder) stays outside the compressed body.
    document = encode_events(batch)
    return MAGIC + document[:1] + zlib.compress(document[1:], 1)


def decode(payload: bytes) -> Batch:
    """Read a batch back; rollups and sessions are rebuilt from its events."""
    if payload[: len(MAGIC)] != MAGIC:
        raise CorruptSpoolFile("not a Watchkeeper spool file")
    try:
        start = len(MAGIC)
        events = decode_events(payload[start : start + 1] + zlib.decompress(payload[start + 1 :]))
    except (zlib.error, UnreadableEvents) as error:
        raise CorruptSpoolFile(f"{type(error).__name__}: {error}") from error
    return replace(
        events,
        rollups=build_rollups(events.spans),
        sessions=build_sessions(events.spans, events.session_marks),
    )
