"""Another process writing a log file through the standard library's RotatingFileHandler:
``python log_writer.py PATH FIRST COUNT MAX_BYTES``. Every 25th record carries a traceback."""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler


def main() -> None:
    path, first, count, max_bytes = sys.argv[1], *map(int, sys.argv[2:5])
    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=1_000, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    writer = logging.getLogger("shop.writer")
    writer.propagate = False
    writer.setLevel(logging.INFO)
    writer.addHandler(handler)
    for number in range(first, first + count):
        if number % 25 == 0:
            try:
                raise TimeoutError(f"gateway slow for record {number}")
            except TimeoutError:
                writer.exception("record %d failed", number)
        else:
            writer.info("record %d", number)
    handler.close()


if __name__ == "__main__":
    main()
