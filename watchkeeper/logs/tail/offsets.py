"""How far each followed file has been recorded, kept in a directory of small JSON files.

One file per followed path (named after a digest of the path, holding the path too), replaced
atomically, so two tails following different files may share the directory, and a crash leaves
either the old offset or the new one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import orjson

from watchkeeper.logs.tail.follow import Position

logger = logging.getLogger("watchkeeper.tail")


class Offsets:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, path: Path) -> Path:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:24]
        return self.directory / f"{digest}.json"

    def load(self, path: Path) -> Position | None:
        """Where reading ``path`` stopped last time; ``None`` for a file never read."""
        try:
            document = orjson.loads(self._file(path).read_bytes())
            if document["path"] != str(path):
                return None
            return Position(
                int(document["device"]), int(document["inode"]), int(document["offset"])
            )
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            logger.warning(
                "Watchkeeper's tail could not read its offset for %s (%s); reading it from "
                "the start",
                path,
                error,
            )
            return None

    def save(self, path: Path, position: Position) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self._file(path)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        document = {
            "path": str(path),
            "device": position.device,
            "inode": position.inode,
            "offset": position.offset,
        }
        temporary.write_bytes(orjson.dumps(document))
        os.replace(temporary, target)
