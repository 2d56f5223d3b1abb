"""``python -m watchkeeper.collector``: the local collector an app starts (see ``local.py``).

Reads its assignment — settings, prefix and paths — as JSON on standard input.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import orjson

from watchkeeper.collector.process import AlreadyRunning, CollectorPlan, run_collector
from watchkeeper.config import Address, load_settings

LOCAL_IDLE_EXIT_SECONDS = 5.0


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("watchkeeper").setLevel(logging.INFO)
    assignment = orjson.loads(sys.stdin.buffer.read())
    settings = load_settings(**assignment["settings"])
    plan = CollectorPlan(
        settings=settings,
        intake=[Address("unix", path=Path(assignment["intake"]))],
        http_socket=Path(assignment["http"]),
        prefix=assignment["prefix"],
        lock=Path(assignment["lock"]),
        idle_exit_seconds=LOCAL_IDLE_EXIT_SECONDS,
    )
    try:
        run_collector(plan)
    except AlreadyRunning:
        return 0  # another worker's collector won the race: it serves everyone
    return 0


if __name__ == "__main__":
    sys.exit(main())
