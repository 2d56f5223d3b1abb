"""Where a collector takes the apps' event frames: a runtime component with socket servers.

Each frame's events go into the collector's recorder as if recorded in its own process, so the
one pipeline — pricing, redaction, rollups, live windows, health, ``/metrics``, the live feed,
writing — covers every worker of every app that ships here. A connection over TCP must present
an ingest key (or an API key) in its hello; a Unix socket is guarded by its folder's permissions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from watchkeeper.config import Address, Settings
from watchkeeper.model.events import Event
from watchkeeper.recording.codec import UnreadableEvents, decode_events
from watchkeeper.recording.frames import (
    ACK,
    HEADER,
    PROTOCOL,
    READY,
    SEQUENCE,
    FrameTooLarge,
    frame,
    frame_length,
)
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.stats import DropReason

logger = logging.getLogger("watchkeeper")


ROOM_TO_SPARE = 64
"""Buffer slots kept free beyond a frame's events: its receipt, and what the collector records
of itself meanwhile."""
ROOM_POLL_SECONDS = 0.005


class Refused(Exception):
    """A hello the collector does not accept; its message goes back to the sender."""


class IntakeComponent:
    name = "intake"

    def __init__(
        self, recorder: Recorder, addresses: Sequence[Address], keys: Sequence[str]
    ) -> None:
        self.recorder = recorder
        self.addresses = tuple(addresses)
        self._keys = tuple(key.encode() for key in keys)
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.frames = 0
        self.waits_for_room = 0
        """Times the intake waited for the flush worker to make room in the buffer."""
        self.idle_since = time.monotonic()

    @classmethod
    def from_settings(
        cls, recorder: Recorder, settings: Settings, addresses: Sequence[Address]
    ) -> IntakeComponent:
        keys = [key.get_secret_value() for key in (*settings.api_keys, *settings.ingest_keys)]
        return cls(recorder, addresses, keys)

    def router(self) -> None:
        return None

    async def start(self) -> None:
        for address in self.addresses:
            self._servers.append(await self._listen(address))
        self.idle_since = time.monotonic()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        # Senders keep what was not acknowledged and send it to the next collector.
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5.0)
        self._servers.clear()

    async def _listen(self, address: Address) -> asyncio.AbstractServer:
        if address.scheme == "unix":
            path = Path(str(address.path))
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a collector that died: the lock says none runs now
            server = await asyncio.start_unix_server(
                lambda reader, writer: self._serve(reader, writer, needs_key=False), path=path
            )
            os.chmod(path, 0o600)
            return server
        if address.scheme == "tls":
            raise ValueError(
                f"WATCHKEEPER_COLLECTOR_LISTEN: {address} — the collector listens on unix: and "
                "tcp:// addresses; put a TLS terminator in front of a tcp:// one"
            )
        return await asyncio.start_server(
            lambda reader, writer: self._serve(reader, writer, needs_key=True),
            host=address.host,
            port=address.port,
        )

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, needs_key: bool
    ) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            try:
                self._check_hello(await _read_frame(reader), needs_key)
            except Refused as refused:
                writer.write(frame(str(refused).encode()))
                await writer.drain()
                return
            writer.write(frame(READY))
            await writer.drain()
            loop = asyncio.get_running_loop()
            while True:
                payload = await _read_frame(reader)
                events = self._read(payload[SEQUENCE.size :])
                await self._wait_for_room(len(events) + ROOM_TO_SPARE)
                submit = self.recorder.submit
                for event in events:
                    submit(event)
                (sequence,) = SEQUENCE.unpack(payload[: SEQUENCE.size])
                # Acknowledged once written (or spooled, or counted as lost), not on arrival:
                # the sender keeps the frame until then, so a collector killed with events
                # in memory loses none of them.
                self.recorder.submit_receipt(
                    functools.partial(loop.call_soon_threadsafe, _acknowledge, writer, sequence)
                )
        except (asyncio.IncompleteReadError, ConnectionError, FrameTooLarge):
            pass  # the sender left (or spoke no protocol of ours): what it sent is taken
        finally:
            self._writers.discard(writer)
            self.connections -= 1
            if not self.connections:
                self.idle_since = time.monotonic()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _wait_for_room(self, count: int) -> None:
        """Take no frame the buffer could not hold whole, and read no further meanwhile.

        A burst from many workers would otherwise fill the buffer and drop events that their
        senders still hold. Unread, frames wait in the socket, then in the senders' windows
        and buffers: the apps count drops only once all of that is full. The flush worker
        drains the buffer whatever the store's state, so a store that is down does not stop
        the intake (what cannot be written waits, spills or is counted there).
        """
        while not self.recorder.has_room_for(count):
            self.waits_for_room += 1
            await asyncio.sleep(ROOM_POLL_SECONDS)

    def _check_hello(self, payload: bytes, needs_key: bool) -> None:
        try:
            hello: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise Refused("not a Watchkeeper sender") from None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            raise Refused(f"this collector speaks protocol {PROTOCOL}; upgrade the sender")
        if not needs_key:
            return
        key = hello.get("key")
        candidate = key.encode() if isinstance(key, str) else b""
        matched = False
        for known in self._keys:
            matched |= hmac.compare_digest(candidate, known)
        if not matched:
            raise Refused(
                "an ingest key is required: set WATCHKEEPER_COLLECTOR_KEY to one of the "
                "collector's WATCHKEEPER_INGEST_KEYS"
            )

    def _read(self, document: bytes) -> list[Event]:
        self.frames += 1
        try:
            batch = decode_events(document)
        except UnreadableEvents as error:
            self.recorder.report_internal_error("reading an app's events", error)
            self.recorder.drop(DropReason.INVALID, 1)
            return []
        return [
            *batch.spans,
            *batch.logs,
            *batch.metrics,
            *batch.snapshots,
            *batch.validations,
            *batch.session_marks,
        ]


def _acknowledge(writer: asyncio.StreamWriter, sequence: int) -> None:
    if not writer.is_closing():
        writer.write(frame(ACK.pack(sequence, 0)))


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(HEADER.size)
    return await reader.readexactly(frame_length(header))
