"""One log file followed by polling: new complete lines, through renames and truncations.

The file is identified by its device and inode. At the end of what it holds, the path is looked
at again: another inode there means the file was rotated (renamed, a new one created), so the
old one is read to its end first, then the new one from its start; the same inode but fewer
bytes than were read means it was truncated (copytruncate), so it is read again from its start.
Offsets count the bytes of complete lines only: a line still being written is read once its
newline arrives (or once its file has been rotated away). A file rotated more than once between
two looks leaves the copies in between beside it (``app.log.1``, ``app.log.2``): those modified
since the file being read are read whole, oldest first, before the new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

READ_BYTES = 1 << 20
COMPRESSED = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip"})
"""Rotated copies a rotation compressed: never read as text."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading a file stands: its identity and the offset of the next line."""

    device: int
    inode: int
    offset: int


@dataclass(slots=True)
class Read:
    """What one read gave: lines, the offset each ends at in the file they came from, and
    whether the file changed after them (rotated or truncated: a record in progress ends)."""

    lines: list[str]
    ends: list[int]
    boundary: bool = False


class FollowedFile:
    def __init__(self, path: Path, resume: Position | None, from_end: bool = False) -> None:
        self.path = path
        self._resume = resume
        self._from_end = from_end
        self._handle: BinaryIO | None = None
        self._device = self._inode = 0
        self._offset = 0
        self._partial = b""
        self.rotations = 0
        self.truncations = 0

    @property
    def position(self) -> Position | None:
        if self._handle is None:
            return self._resume
        return Position(self._device, self._inode, self._offset)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def read(self) -> Read:
        """New complete lines; at the end of the file, a look for a rotation or truncation."""
        handle = self._handle
        if handle is None:
            handle = self._open()
            if handle is None:
                return Read([], [])
        read = self._lines(handle)
        if read.lines:
            return read
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return read  # renamed, its successor not created yet: keep the old one
        if (status.st_dev, status.st_ino) != (self._device, self._inode):
            read = self._lines(handle, final=True)  # what was written before the rename
            # Rotated more than once since the last look: the files in between, oldest first.
            for between in self._rotated_since(os.fstat(handle.fileno())):
                self._read_whole(between, read)
            self.close()
            self.rotations += 1
            self._resume = None
            self._from_end = False
            self._open()
            read.boundary = True
        elif status.st_size < self._offset + len(self._partial):
            handle.seek(0)
            self._offset, self._partial = 0, b""
            self.truncations += 1
            read.boundary = True
        return read

    def _open(self) -> BinaryIO | None:
        resume = self._resume
        handle: BinaryIO
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - held open across calls
        except FileNotFoundError:
            return None
        status = os.fstat(handle.fileno())
        if resume is not None and (status.st_dev, status.st_ino) != (resume.device, resume.inode):
            # Rotated while nothing read it: finish the file it was in, if it is still beside.
            rotated = self._rotated_sibling(resume)
            if rotated is not None:
                handle.close()
                handle, status = rotated
            else:
                resume = None
        self._handle = handle
        self._device, self._inode = status.st_dev, status.st_ino
        if resume is not None and resume.offset <= status.st_size:
            self._offset = resume.offset
        elif resume is None and self._from_end:
            self._offset = status.st_size
        else:
            self._offset = 0
        handle.seek(self._offset)
        self._partial = b""
        return handle

    def _siblings(self) -> list[tuple[Path, os.stat_result]]:
        """Files beside this one named after it (its rotated copies), compressed ones aside."""
        found = []
        for candidate in self.path.parent.glob(f"{self.path.name}?*"):
            if candidate.suffix in COMPRESSED:
                continue
            try:
                found.append((candidate, os.stat(candidate)))
            except OSError:
                continue
        return found

    def _rotated_since(self, finished: os.stat_result) -> list[Path]:
        later = [
            (status.st_mtime_ns, path)
            for path, status in self._siblings()
            if (status.st_dev, status.st_ino) != (finished.st_dev, finished.st_ino)
            and status.st_mtime_ns >= finished.st_mtime_ns
        ]
        return [path for _, path in sorted(later)]

    def _read_whole(self, path: Path, into: Read) -> None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return
        with handle:
            offset, partial = self._offset, self._partial
            self._offset, self._partial = 0, b""
            whole = self._lines(handle, final=True)
            self._offset, self._partial = offset, partial
        into.lines.extend(whole.lines)
        into.ends.extend(whole.ends)

    def _rotated_sibling(self, resume: Position) -> tuple[BinaryIO, os.stat_result] | None:
        for candidate, status in self._siblings():
            if (status.st_dev, status.st_ino) == (resume.device, resume.inode):
                handle = open(candidate, "rb")  # noqa: SIM115 - held open across calls
                return handle, os.fstat(handle.fileno())
        return None

    def _lines(self, handle: BinaryIO, final: bool = False) -> Read:
        lines: list[str] = []
        ends: list[int] = []
        offset = self._offset
        while True:
            chunk = handle.read(READ_BYTES)
            if not chunk:
                break
            parts = (self._partial + chunk).split(b"\n")
            self._partial = parts.pop()
            for part in parts:
                offset += len(part) + 1
                lines.append(part.decode("utf-8", "replace").removesuffix("\r"))
                ends.append(offset)
            if len(chunk) < READ_BYTES:
                break
        if final and self._partial:
            offset += len(self._partial)
            lines.append(self._partial.decode("utf-8", "replace").removesuffix("\r"))
            ends.append(offset)
            self._partial = b""
        self._offset = offset
        return Read(lines, ends)
