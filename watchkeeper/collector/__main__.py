"""``python -m watchkeeper.collector``: the local collector an app starts (see ``local.py``).

Reads its assignment — settings, prefix and paths — as JSON on standard input, takes the lock
before importing anything heavy (so apps starting at the same moment see at once that a
collector is on its way), then runs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

from watchkeeper.collector.lock import AlreadyRunning, take_lock

LOCAL_IDLE_EXIT_SECONDS = 5.0


def main() -> int:
    assignment = json.loads(sys.stdin.buffer.read())
    try:
        lock = take_lock(Path(assignment["lock"]))
    except AlreadyRunning:
        return 0  # another worker's collector won the race: it serves everyone
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("watchkeeper").setLevel(logging.INFO)

    from watchkeeper.collector.process import CollectorPlan, run_collector  # noqa: PLC0415
    from watchkeeper.config import Address, load_settings  # noqa: PLC0415

    settings = assignment["settings"]
    if "WATCHKEEPER_INSTANCE" not in os.environ:
        # It speaks for every worker of the app on this host: named after the host, not after
        # the worker that happened to start it.
        settings["instance"] = socket.gethostname()
    plan = CollectorPlan(
        settings=load_settings(**settings),
        intake=[Address("unix", path=Path(assignment["intake"]))],
        http_socket=Path(assignment["http"]),
        prefix=assignment["prefix"],
        idle_exit_seconds=LOCAL_IDLE_EXIT_SECONDS,
    )
    run_collector(plan, held_lock=lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
