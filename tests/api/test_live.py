"""The live feed on a real server: new spans arrive, keys are required (and never read from the
URL), stalled clients go."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.api.conftest import API_KEY
from tests.support.server import LiveServer
from watchkeeper.api.live import LiveHub
from watchkeeper.api.routes import live
from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.wiring import instrument

AUTH = json.dumps({"type": "auth", "key": API_KEY})


def authenticate(socket: ClientConnection, message: str = AUTH) -> None:
    """Send the key as the first message and wait for the server's ``ready``."""
    socket.send(message)
    assert json.loads(socket.recv(timeout=30)) == {"type": "ready"}


def read_all(socket: ClientConnection) -> None:
    while True:
        socket.recv(timeout=30)


def closed_with(socket: ClientConnection) -> tuple[int, str]:
    """Read until the server closes the socket; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        read_all(socket)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, Recorder, LiveHub]]:
    settings = load_settings(
        sqlite_path=tmp_path / "live.db", api_keys=[API_KEY], flush_interval=0.05
    )
    app = FastAPI()
    runtime = instrument(app, settings, outbound=False)
    assert runtime.api is not None
    server = LiveServer(app).start()
    try:
        url = server.url.replace("http://", "ws://") + "/watchkeeper/api/v1/live"
        yield url, runtime.recorder, runtime.api.hub
    finally:
        server.stop()
        set_recorder(None)


def test_a_span_recorded_after_connecting_arrives(running: tuple[str, Recorder, LiveHub]) -> None:
    url, recorder, hub = running
    with connect(url, open_timeout=30) as socket:
        authenticate(socket)
        deadline = time.monotonic() + 30
        while hub.subscribers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with recorder.span("POST /api/guidance", SpanKind.REQUEST) as span:
            span.set_identity(session_id="s-live")
        names: list[str] = []
        while "POST /api/guidance" not in names:
            message = json.loads(socket.recv(timeout=30))
            if message["type"] == "spans":
                names += [item["name"] for item in message["spans"]]
                session_ids = {item["session_id"] for item in message["spans"]}
    assert "s-live" in session_ids


@pytest.mark.parametrize(
    ("first_message", "reason"),
    [
        (json.dumps({"type": "auth", "key": "wrong"}), "not valid"),
        (json.dumps({"type": "auth", "key": ""}), "first message must be"),
        (json.dumps({"type": "auth"}), "first message must be"),
        (json.dumps({"type": "subscribe", "key": API_KEY}), "first message must be"),
        (json.dumps(["auth", API_KEY]), "first message must be"),
        ("not json", "first message must be"),
        (API_KEY, "first message must be"),
        (API_KEY.encode(), "first message must be"),
    ],
)
def test_a_wrong_or_malformed_first_message_is_refused(
    running: tuple[str, Recorder, LiveHub], first_message: str | bytes, reason: str
) -> None:
    url, _, hub = running
    with connect(url, open_timeout=30) as socket:
        socket.send(first_message)
        code, said = closed_with(socket)
    assert code == 1008
    assert reason in said
    assert hub.subscribers == 0


def test_a_client_that_sends_no_key_is_closed_in_bounded_time(
    running: tuple[str, Recorder, LiveHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, hub = running
    monkeypatch.setattr(live, "AUTH_TIMEOUT", 0.3)
    started = time.monotonic()
    with connect(url, open_timeout=30) as socket:
        code, said = closed_with(socket)
    assert code == 1008
    assert "no auth message" in said
    assert time.monotonic() - started < 5
    assert hub.subscribers == 0


def test_a_key_in_the_url_is_refused_even_when_valid(
    running: tuple[str, Recorder, LiveHub],
) -> None:
    url, _, hub = running
    with connect(f"{url}?key={API_KEY}", open_timeout=30) as socket:
        code, said = closed_with(socket)
    assert code == 1008
    assert "URL" in said
    assert hub.subscribers == 0


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {API_KEY}"}, {"X-API-Key": API_KEY}]
)
def test_clients_that_can_set_headers_may_still_use_them(
    running: tuple[str, Recorder, LiveHub], headers: dict[str, str]
) -> None:
    url, _, _ = running
    with connect(url, open_timeout=30, additional_headers=headers) as socket:
        assert json.loads(socket.recv(timeout=30)) == {"type": "ready"}


def test_a_wrong_header_key_is_refused(running: tuple[str, Recorder, LiveHub]) -> None:
    url, _, _ = running
    with connect(url, open_timeout=30, additional_headers={"X-API-Key": "wrong"}) as socket:
        code, _ = closed_with(socket)
    assert code == 1008


def test_a_stalled_client_is_dropped(running: tuple[str, Recorder, LiveHub]) -> None:
    url, _, hub = running
    hub.queue_size = 4
    # max_queue=1: the client stops reading from the socket once one message is waiting.
    with connect(url, open_timeout=30, max_queue=1) as stalled:
        authenticate(stalled)
        deadline = time.monotonic() + 30
        while hub.subscribers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        payload = {"type": "spans", "spans": [{"name": "x" * 10_000}] * 50}
        deadline = time.monotonic() + 30
        while hub.disconnected_slow == 0 and time.monotonic() < deadline:
            hub.publish(payload)
            time.sleep(0.001)
        assert hub.disconnected_slow == 1
        deadline = time.monotonic() + 30
        while hub.subscribers and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hub.subscribers == 0
