"""Zero set-up: one collector process per host and app, started by whichever worker needs it first.

Every worker of an app (``uvicorn --workers N``, gunicorn, replicas sharing a host) derives the
same socket paths from the app's store, service and prefix. A worker that finds no collector
answering starts one — unless another process holds the collector's lock, which the collector
keeps for as long as it runs — and connects once it answers. Two workers starting one at the same
moment is harmless: the second collector finds the lock taken and leaves. The collector leaves
too once no app has been connected for a few seconds, so it outlives no app for long, and the
next worker that needs it starts it again, which is also how it comes back after a crash.

The child learns its settings over a pipe (secrets included, so never on its command line), and
inherits nothing else of the app: a new session, no descriptors, output to a log file beside its
sockets.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from socket import socket

import orjson

from watchkeeper.collector.connect import RemoteCollector
from watchkeeper.collector.lock import held, holder, spawn_in_progress, spawning
from watchkeeper.config import Address, Settings, settings_document

START_WAIT_SECONDS = 120.0
"""How long a worker waits for a collector that is starting (imports, store, migrations) to
answer; a loaded machine can take tens of seconds. The app does not wait: its events do."""


@dataclass(frozen=True, slots=True)
class LocalPaths:
    intake: Path
    """Where apps ship their events."""
    http: Path
    """Where the collector serves Watchkeeper's application to the apps."""
    lock: Path
    spawn: Path
    log: Path

    @classmethod
    def for_app(cls, settings: Settings, prefix: str) -> LocalPaths:
        directory = settings.collector_directory or Path(
            tempfile.gettempdir(), f"watchkeeper-{os.getuid()}"
        )
        store = (
            settings.database_url.get_secret_value()
            if settings.database_url is not None
            else str(settings.sqlite_path.resolve())
        )
        identity = orjson.dumps([store, settings.database_schema, settings.service, prefix])
        # A digest, so the store's URL (and any password in it) is not in a file name.
        name = hashlib.sha256(identity).hexdigest()[:16]
        intake = directory / f"{name}.sock"
        return cls(
            intake=intake,
            http=http_socket_for(intake),
            lock=directory / f"{name}.lock",
            spawn=directory / f"{name}.spawn",
            log=directory / f"{name}.log",
        )


def http_socket_for(intake: Path) -> Path:
    """Where a collector taking events at ``intake`` serves Watchkeeper's application."""
    return intake.with_name(f"{intake.stem}.http{intake.suffix}")


class LocalCollector:
    """The host's collector for this app, started when none answers."""

    def __init__(
        self,
        settings: Settings,
        prefix: str,
        paths: LocalPaths,
        before_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.prefix = prefix
        self.paths = paths
        self._remote = RemoteCollector(
            Address("unix", path=paths.intake),
            settings.service,
            settings.instance,
            before_fallback=before_fallback,
        )
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    def connect(self) -> socket | None:
        connection = self._remote.connect()
        if connection is not None:
            return connection
        self._start()
        deadline = time.monotonic() + START_WAIT_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            connection = self._remote.connect()
            if connection is not None:
                return connection
            if not self._collector_on_its_way():
                return None  # none is running or coming: its log says why; the app falls back
            # Polling a socket being set up, on the shipping thread: the app does not wait.
            self._stopping.wait(0.1)
        return None

    def _collector_on_its_way(self) -> bool:
        """Whether a collector runs (not answering yet) or some worker is starting one."""
        if holder(self.paths.lock) is not None or spawn_in_progress(self.paths.spawn):
            return True
        child = self._child  # ours, before it takes its lock
        return child is not None and child.poll() is None

    def before_fallback(self) -> None:
        self._remote.before_fallback()

    def close(self) -> None:
        self._stopping.set()

    def _start(self) -> None:
        if self._child is not None:
            self._child.poll()  # reaps an earlier child that has exited
        with spawning(self.paths.spawn) as ours:
            # Another worker is starting one: the caller waits for it to answer.
            if not ours or held(self.paths.lock):
                return
            child = self._spawn()
            # Until the child holds its lock (its first act), the others must not probe it.
            deadline = time.monotonic() + START_WAIT_SECONDS
            while holder(self.paths.lock) != child.pid and child.poll() is None:
                if time.monotonic() > deadline or self._stopping.wait(0.02):
                    break

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = open(self.paths.log, "ab")  # noqa: SIM115 - the child's output, closed below
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "watchkeeper.collector"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
        assignment = {
            "settings": settings_document(self.settings),
            "prefix": self.prefix,
            "intake": str(self.paths.intake),
            "http": str(self.paths.http),
            "lock": str(self.paths.lock),
        }
        stdin = child.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.write(orjson.dumps(assignment))
            with contextlib.suppress(OSError):
                stdin.close()
        self._child = child
        return child
