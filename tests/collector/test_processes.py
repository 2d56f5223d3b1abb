"""Real processes: ``uvicorn --workers 4`` apps, the local collector they start, kill -9."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.collector.support import short_directory
from tests.support.waiting import wait_until
from watchkeeper.collector.local import LocalPaths
from watchkeeper.collector.lock import holder
from watchkeeper.config import load_settings
from watchkeeper.recording.recorder import SHIP_BATCH_SIZE
from watchkeeper.recording.shipping import WINDOW

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "collector-test-key"
ROUTE = 'handler="/api/v1/work/{number}"'
START_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class App:
    """``uvicorn --workers N`` serving tests/runtime/served_app.py with the default collector."""

    url: str
    database: Path
    paths: LocalPaths
    process: subprocess.Popen[bytes]
    environment: dict[str, str] = field(default_factory=dict)

    def collector_pid(self) -> int | None:
        return holder(self.paths.lock)


@contextlib.contextmanager
def running_app(tmp_path: Path, workers: int = 4, **extra: str) -> Iterator[App]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "app.db"
    directory = short_directory()
    port = _free_port()
    environment = {
        **os.environ,
        "WATCHKEEPER_COLLECTOR": "auto",
        "WATCHKEEPER_COLLECTOR_DIRECTORY": str(directory),
        "WATCHKEEPER_DATABASE_URL": f"sqlite:///{database}",
        "WATCHKEEPER_API_KEYS": KEY,
        **extra,
    }
    # The paths the workers derive from their settings, to find their collector by.
    settings = load_settings(
        database_url=environment["WATCHKEEPER_DATABASE_URL"],
        database_schema=environment.get("WATCHKEEPER_DATABASE_SCHEMA", "watchkeeper"),
        collector_directory=directory,
    )
    paths = LocalPaths.for_app(settings, "/watchkeeper")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.runtime.served_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=environment,
    )
    app = App(f"http://127.0.0.1:{port}", database, paths, process, environment)
    try:
        wait_until(lambda: _answers(app.url), START_SECONDS, "the app to start")
        yield app
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/livez", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _requests_counted(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("http_requests_total{") and ROUTE in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _metrics(url: str) -> str:
    # A new connection each time, so successive scrapes reach different workers.
    response = httpx.get(
        url + "/metrics", headers={"Authorization": f"Bearer {KEY}", "Connection": "close"}
    )
    response.raise_for_status()
    return response.text


def _stored_requests(database: Path, distinct: bool = False) -> int:
    """Request spans stored; with ``distinct``, requests (one trace each) however often."""
    counted = "count(DISTINCT trace_id)" if distinct else "count(*)"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            f"SELECT {counted} FROM wk_spans"
            " WHERE kind = 'request' AND name LIKE 'GET /api/v1/work/%'"
        ).fetchone()
    return int(row[0])


def _send(url: str, numbers: range) -> None:
    with httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"}) as client:
        for number in numbers:
            assert client.get(f"/api/v1/work/{number}").status_code == 200


def test_four_workers_one_collector_one_view_and_every_request_stored(tmp_path: Path) -> None:
    requests = 400
    with running_app(tmp_path) as app:
        threads = [
            threading.Thread(target=_send, args=(app.url, range(start, requests, 4)))
            for start in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        collector = app.collector_pid()
        assert collector is not None  # one collector process, started by a worker
        # Every worker answers /metrics from the collector: each scrape counts all requests.
        wait_until(
            lambda: _requests_counted(_metrics(app.url)) == requests,
            60,
            "the collector's /metrics to count every request",
        )
        scrapes = [_requests_counted(_metrics(app.url)) for _ in range(8)]
        assert scrapes == [requests] * 8
    # The app has stopped: the collector leaves once no worker is connected.
    wait_until(lambda: app.collector_pid() is None, 120, "the collector to leave with the app")
    assert _stored_requests(app.database) == requests


def test_the_app_keeps_serving_while_its_collector_is_killed_and_comes_back(
    tmp_path: Path,
) -> None:
    answered = 0
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    with running_app(tmp_path, workers=2) as app:

        def load(offset: int) -> None:
            nonlocal answered
            number = offset
            # New connections, so the load reaches every worker.
            headers = {"Connection": "close"}
            with httpx.Client(base_url=app.url, timeout=60, headers=headers) as client:
                while not stop.is_set():
                    try:
                        status = client.get(f"/api/v1/work/{number}").status_code
                    except httpx.TransportError as error:
                        failures.append(repr(error))
                        continue
                    if status != 200:
                        failures.append(str(status))
                    with lock:
                        answered += 1
                    number += 2

        clients = [threading.Thread(target=load, args=(offset,)) for offset in range(2)]
        for client in clients:
            client.start()
        try:
            wait_until(lambda: answered >= 200, 120, "load before the kill")
            # Killed once it serves (the workers' view comes from it), not while it starts.
            wait_until(lambda: _requests_counted(_metrics(app.url)) > 0, 120, "the collector")
            first = app.collector_pid()
            assert first is not None
            os.kill(first, signal.SIGKILL)
            # Workers notice, start a new collector, and send again what it had not
            # acknowledged: the new one's view fills without the app doing anything.
            wait_until(lambda: app.collector_pid() not in (None, first), 120, "a new collector")
            wait_until(
                lambda: _requests_counted(_metrics(app.url)) > 0, 120, "the workers to reconnect"
            )
            after_restart = answered
            wait_until(lambda: answered >= after_restart + 200, 120, "load after the restart")
        finally:
            stop.set()
            for client in clients:
                client.join()
        counted = _requests_counted(_metrics(app.url))
    wait_until(lambda: app.collector_pid() is None, 120, "the collector to leave with the app")
    assert failures == []
    # The new collector counts from its start: what it was sent again, and what came after.
    assert 0 < counted <= answered
    # A collector acknowledges a frame once it is written: whatever the killed one held was
    # sent again, so every request answered is stored. Frames it had written but not yet
    # acknowledged are stored twice: at most what the workers may have in flight.
    assert _stored_requests(app.database, distinct=True) == answered
    in_flight = 2 * WINDOW * SHIP_BATCH_SIZE
    assert answered <= _stored_requests(app.database) <= answered + in_flight


def test_the_collectors_log_says_nothing_went_wrong(tmp_path: Path) -> None:
    with running_app(tmp_path, workers=1) as app:
        _send(app.url, range(20))
        wait_until(lambda: _requests_counted(_metrics(app.url)) == 20, 120, "the collector")
    wait_until(lambda: app.collector_pid() is None, 120, "the collector to leave with the app")
    log = app.paths.log.read_text()
    assert not re.search(r"Traceback|ERROR|CRITICAL", log), log
