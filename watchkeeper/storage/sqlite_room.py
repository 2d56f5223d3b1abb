"""SQLite's write-ahead log kept within the room its disk has left.

The store lets the WAL grow to :data:`~watchkeeper.storage.engine.SQLITE_CHECKPOINT_PAGES`
pages (about 40 MB) before copying it into the database file, which saves I/O. On a disk with
less free than twice that, the WAL can take the last of it. Then no write commits, and the
checkpoint that would shrink the WAL needs room of its own to copy pages into the database
file, so the store can stay full even after the user has freed some space. While the disk is
that low, each write is followed by a checkpoint that empties the WAL file (``TRUNCATE``), so it
never holds more than about one batch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import Engine

from watchkeeper.storage.engine import SQLITE_CHECKPOINT_PAGES, driver_connection
from watchkeeper.storage.errors import DATABASE_ERRORS

logger = logging.getLogger("watchkeeper")

SQLITE_PAGE_BYTES = 4096
"""SQLite's default page size, which the store keeps."""

LOW_DISK_BYTES = 2 * SQLITE_CHECKPOINT_PAGES * SQLITE_PAGE_BYTES
"""Free space below which every write empties the WAL: twice the most it holds otherwise."""

MEBIBYTE = 1024 * 1024


class WalRoom:
    """Watches the free space on the disk of one SQLite file, and empties its WAL when low."""

    def __init__(self, database: Path, low_disk_bytes: int = LOW_DISK_BYTES) -> None:
        self._database = database
        self._low_disk_bytes = low_disk_bytes
        self._low = False  # what the last write found, so each change is told once

    def after_write(self, engine: Engine) -> None:
        """Empty the WAL if the disk is low. Never raises: the write itself is stored."""
        try:
            status = os.statvfs(self._database)
        except OSError:
            return  # the file is gone or unreadable: the next write says why
        free = status.f_bavail * status.f_frsize
        low = free < self._low_disk_bytes
        if low != self._low:
            self._low = low
            self._say(low, free)
        if low:
            try:
                with engine.connect() as connection:
                    driver_connection(connection).execute(
                        "PRAGMA wal_checkpoint(TRUNCATE)"
                    ).fetchall()
            except (*DATABASE_ERRORS, RuntimeError) as error:
                # Readers in the way, no room to copy pages into, or a connection closed under
                # it (RuntimeError): the next write tries again.
                logger.debug("Watchkeeper could not empty its SQLite WAL: %s", error)

    def _say(self, low: bool, free: int) -> None:
        if low:
            logger.warning(
                "The disk of Watchkeeper's SQLite store (%s) has %d MiB free. Watchkeeper now "
                "empties its write-ahead log after every write, which is slower, so that the log "
                "cannot take the last of the disk. Free some space to go back to normal.",
                self._database,
                free // MEBIBYTE,
            )
        else:
            logger.info(
                "The disk of Watchkeeper's SQLite store has %d MiB free again: writes go back to "
                "checkpointing the write-ahead log every %d pages.",
                free // MEBIBYTE,
                SQLITE_CHECKPOINT_PAGES,
            )
