"""The app's way to its collector: a socket with the hello answered.

:class:`RemoteCollector` connects to a collector at a configured address (``unix:``, ``tcp://``,
``tls://``); :class:`LocalCollector` is the zero-set-up default, which starts the host's local
collector process when none answers (:mod:`~watchkeeper.collector.local`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable

import orjson

from watchkeeper.config import Address
from watchkeeper.recording.frames import PROTOCOL, READY, frame
from watchkeeper.recording.shipping import read_frame

logger = logging.getLogger("watchkeeper")

CONNECT_TIMEOUT_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 30.0
"""A send that makes no progress for this long: the collector is stuck, not merely busy."""


class RemoteCollector:
    """A collector someone else runs, at ``address``; ``key`` for one across a network."""

    def __init__(
        self,
        address: Address,
        service: str,
        instance: str,
        key: str | None = None,
        before_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self.address = address
        self._hello = frame(
            orjson.dumps(
                {
                    "protocol": PROTOCOL,
                    "service": service,
                    "instance": instance,
                    "pid": os.getpid(),
                    "key": key,
                }
            )
        )
        self._before_fallback = before_fallback
        self._last_refusal: str | None = None

    def connect(self) -> socket.socket | None:
        try:
            connection = self._open()
        except OSError:
            return None
        try:
            connection.settimeout(CONNECT_TIMEOUT_SECONDS)
            connection.sendall(self._hello)
            answer = read_frame(connection)
            connection.settimeout(SEND_TIMEOUT_SECONDS)
        except OSError:
            connection.close()
            return None
        if answer != READY:
            connection.close()
            refusal = answer.decode(errors="replace")
            if refusal != self._last_refusal:
                logger.warning("Watchkeeper's collector at %s refused: %s", self.address, refusal)
            self._last_refusal = refusal
            return None
        self._last_refusal = None
        return connection

    def before_fallback(self) -> None:
        self._before_fallback()

    def _open(self) -> socket.socket:
        address = self.address
        if address.scheme == "unix":
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(CONNECT_TIMEOUT_SECONDS)
            try:
                connection.connect(str(address.path))
            except OSError:
                connection.close()
                raise
            return connection
        connection = socket.create_connection(
            (address.host, address.port), timeout=CONNECT_TIMEOUT_SECONDS
        )
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if address.scheme == "tls":
            context = ssl.create_default_context()
            try:
                return context.wrap_socket(connection, server_hostname=address.host)
            except OSError:
                connection.close()
                raise
        return connection
