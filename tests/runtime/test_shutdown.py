"""SIGTERM under load: the server drains what is in flight, then Watchkeeper flushes all of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_request_answered_before_sigterm_is_stored(tmp_path: Path) -> None:
    database = tmp_path / "drain.db"
    port = _free_port()
    environment = {
        **os.environ,
        "WATCHKEEPER_DATABASE_URL": f"sqlite:///{database}",
        # Nothing is written before shutdown: all of it depends on the flush at the end.
        "WATCHKEEPER_FLUSH_INTERVAL": "60",
        "WATCHKEEPER_SHUTDOWN_TIMEOUT": "60",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.runtime.served_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "30",
        ],
        cwd=ROOT,
        env=environment,
        stderr=subprocess.PIPE,
    )
    answered: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    url = f"http://127.0.0.1:{port}"

    def client(offset: int) -> None:
        number = offset
        with httpx.Client(base_url=url, timeout=30, headers={"Connection": "close"}) as http:
            while not stop.is_set():
                try:
                    response = http.get(f"/api/v1/work/{number}")
                except httpx.TransportError:
                    if server.poll() is not None:
                        return  # the server is gone: nothing more to send
                    continue
                if response.status_code == 200:
                    with lock:
                        answered.append(number)
                number += CLIENTS

    try:
        wait_until(lambda: _answers(url), timeout=60, what="the server to start")
        threads = [threading.Thread(target=client, args=(offset,)) for offset in range(CLIENTS)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(answered) >= 300, timeout=120, what="300 answered requests")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
    # uvicorn re-raises the signal it caught once it has shut down gracefully.
    errors = server.stderr.read().decode() if server.stderr else ""
    assert server.returncode in (0, -signal.SIGTERM), errors
    assert "Traceback" not in errors
    with sqlite3.connect(database) as connection:
        (stored,) = connection.execute(
            "SELECT COUNT(*) FROM wk_spans WHERE name = ?", ("GET /api/v1/work/{number}",)
        ).fetchone()
    assert len(answered) >= 300
    assert stored == len(answered)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/livez", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
