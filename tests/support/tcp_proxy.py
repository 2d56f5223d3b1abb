"""A loopback TCP proxy the tests start in front of a real server, and make misbehave on cue.

Faults, as a network does them:

- :meth:`cut`: every open connection is reset and new ones are refused (the server went down).
- :meth:`black_hole`: nothing is reset, but no byte goes through any more, on open or new
  connections (the host vanished without a word).
- :meth:`heal_new_only`: new connections work again, while those that were black-holed stay so
  (the host came back, but the old TCP sessions are dead).
- :meth:`slow`: every chunk is delayed (a congested link).
- :meth:`restore`: back to normal for everything.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    black_holed: threading.Event = field(default_factory=threading.Event)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._swallow_new = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self.delay = 0.0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()
        self._close_all()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones, as if the server went down."""
        self._open.clear()
        self._close_all()

    def black_hole(self) -> None:
        """Let no byte through, on open connections and on new ones, and reset nothing."""
        self._swallow_new.set()
        with self._lock:
            for link in self._links:
                link.black_holed.set()

    def heal_new_only(self) -> None:
        """New connections work again; the black-holed ones stay dead."""
        self._swallow_new.clear()
        self._open.set()

    def slow(self, seconds_per_chunk: float) -> None:
        self.delay = seconds_per_chunk

    def restore(self) -> None:
        self._open.set()
        self._swallow_new.clear()
        self.delay = 0.0
        with self._lock:
            for link in self._links:
                link.black_holed.clear()

    def _close_all(self) -> None:
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            for sock in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream)
            if self._swallow_new.is_set():
                link.black_holed.set()
            with self._lock:
                self._links.append(link)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(link, source, sink), daemon=True).start()

    def _pipe(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if link.black_holed.is_set():
                    continue  # swallowed: the peer waits for an answer that never comes
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
