"""In the default mode the app's workers only ship; the local collector they start writes the
store and evaluates the rules, its API reached through any worker."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.support import drops
from tests.collector.test_processes import KEY, running_app
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.storage.factory import open_store

pytestmark = pytest.mark.slow


def test_the_collector_evaluates_and_the_workers_do_not(tmp_path: Path) -> None:
    with running_app(tmp_path, workers=2) as app:
        auth = {"Authorization": f"Bearer {KEY}"}

        def alerts() -> dict[str, Any]:
            answer = httpx.get(f"{app.url}/watchkeeper/health/alerts", headers=auth, timeout=10)
            body: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
            return body

        wait_until(lambda: alerts().get("evaluator"), 120, "an evaluator")
        store = open_store(load_settings(sqlite_path=app.database))
        try:
            drops(store, time.time(), 1)
        finally:
            store.close()
        wait_until(
            lambda: any(
                alert["rule"] == "MonitoringDroppingData" for alert in alerts().get("alerts", [])
            ),
            120,
            "the default rule to fire",
        )
        evaluator = alerts()["evaluator"]
        assert isinstance(evaluator, dict)
        # The holder is the collector, named after its host (a worker's name adds its pid), and
        # has been from the start.
        assert str(evaluator["holder"]).split(":")[0] == socket.gethostname()
        assert evaluator["term"] == 1
        assert app.collector_pid() is not None
