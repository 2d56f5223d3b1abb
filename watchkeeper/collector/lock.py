"""The local collector's lock: held for as long as a collector runs, holding its process id.

Standard library only: the collector takes it before importing anything heavy, so that apps
starting at the same moment see at once that a collector is on its way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class AlreadyRunning(Exception):
    """Another collector holds the lock."""


def take_lock(path: Path) -> int:
    """Take the lock (without waiting) and write this process's id in it; its descriptor."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise AlreadyRunning(f"another collector holds {path}") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())
    return descriptor


def holder(path: Path) -> int | None:
    """The process id of the collector holding the lock, or ``None`` if none runs.

    Reads the file and asks whether that process lives, never taking the lock itself.
    """
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, under another user
    return None if _exited(pid) else pid


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped (a zombie answers signals)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the command name, which is in parentheses and may hold spaces.
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False  # no /proc (macOS): signals alone tell


def held(path: Path) -> bool:
    """Whether a collector holds the lock. Takes it for a moment when free: call it only while
    holding :func:`spawning`'s lock, so that no collector being started can be misled."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def spawn_in_progress(path: Path) -> bool:
    """Whether some app process holds :func:`spawning`'s lock: a collector is on its way."""
    with spawning(path) as ours:
        return not ours


@contextlib.contextmanager
def spawning(path: Path) -> Iterator[bool]:
    """Held by the one app process deciding to start a collector (``True``), while the others
    (``False``) wait for the collector it starts."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)
