"""The live feed on a real server: new spans arrive, keys are required, stalled clients go."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api.conftest import API_KEY
from tests.support.server import LiveServer
from watchkeeper.api.app import mount_api
from watchkeeper.api.live import LiveHub
from watchkeeper.config import load_settings
from watchkeeper.recording.model import SpanKind
from watchkeeper.recording.recorder import Recorder


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, Recorder, LiveHub]]:
    settings = load_settings(
        sqlite_path=tmp_path / "live.db", api_keys=[API_KEY], flush_interval=0.05
    )
    recorder = Recorder(settings).start()
    app = FastAPI()
    hub = mount_api(app, recorder, settings)
    server = LiveServer(app).start()
    try:
        yield server.url.replace("http://", "ws://") + "/watchkeeper/api/v1/live", recorder, hub
    finally:
        server.stop()
        recorder.stop()


def test_a_span_recorded_after_connecting_arrives(running: tuple[str, Recorder, LiveHub]) -> None:
    url, recorder, hub = running
    with connect(f"{url}?key={API_KEY}", open_timeout=5) as socket:
        deadline = time.monotonic() + 5
        while hub.subscribers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with recorder.span("POST /api/guidance", SpanKind.REQUEST) as span:
            span.set_identity(session_id="s-live")
        names: list[str] = []
        while "POST /api/guidance" not in names:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] == "spans":
                names += [item["name"] for item in message["spans"]]
                session_ids = {item["session_id"] for item in message["spans"]}
    assert "s-live" in session_ids


def test_the_feed_needs_a_key(running: tuple[str, Recorder, LiveHub]) -> None:
    url, _, _ = running
    for address in (url, f"{url}?key=wrong"):
        with connect(address, open_timeout=5) as socket, pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


def test_a_stalled_client_is_dropped(running: tuple[str, Recorder, LiveHub]) -> None:
    url, _, hub = running
    hub.queue_size = 4
    # max_queue=1: the client stops reading from the socket once one message is waiting.
    with connect(f"{url}?key={API_KEY}", open_timeout=5, max_queue=1) as _stalled:
        deadline = time.monotonic() + 5
        while hub.subscribers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        payload = {"type": "spans", "spans": [{"name": "x" * 10_000}] * 50}
        deadline = time.monotonic() + 30
        while hub.disconnected_slow == 0 and time.monotonic() < deadline:
            hub.publish(payload)
            time.sleep(0.001)
        assert hub.disconnected_slow == 1
        deadline = time.monotonic() + 5
        while hub.subscribers and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hub.subscribers == 0
