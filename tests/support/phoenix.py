"""Arize Phoenix, run from its own virtual environment on 127.0.0.1, for the export test and the
OTLP ingest benchmark.

Phoenix pins packages that conflict with Watchkeeper's test extra (anthropic below 2), so
``scripts/install-phoenix`` installs it into ``.cache/phoenix-venv`` (``scripts/test`` runs it),
and it runs as a subprocess: ``phoenix serve`` on free ports, its SQLite database in a directory
of the caller's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = ROOT / ".cache" / "phoenix-venv" / "bin" / "phoenix"
INSTALL_SCRIPT = ROOT / "scripts" / "install-phoenix"
INSTALL_SECONDS = 1_200
START_SECONDS = 600.0
"""Phoenix migrates a fresh database on start: minutes on a 2-core machine others keep busy."""
PROJECT = "default"
"""Where Phoenix puts spans whose resource names no project."""


def install_phoenix() -> str | None:
    """Install Phoenix unless it is there; ``None`` once it is, else why it could not be."""
    if PHOENIX.exists():
        return None
    try:
        subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            check=True,
            capture_output=True,
            text=True,
            timeout=INSTALL_SECONDS,
        )
    except subprocess.CalledProcessError as error:
        return f"scripts/install-phoenix failed: {(error.stderr or error.stdout)[-500:]}"
    except subprocess.TimeoutExpired:
        return f"scripts/install-phoenix took more than {INSTALL_SECONDS} s"
    return None if PHOENIX.exists() else "scripts/install-phoenix installed no phoenix command"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Phoenix:
    """``phoenix serve`` on 127.0.0.1, its database and log in ``directory``.

    ``command_prefix`` runs it under another command (``taskset -c 0`` in the benchmark).
    """

    def __init__(self, directory: Path, command_prefix: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "phoenix.log"
        environment = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(free_port()),
            "PHOENIX_WORKING_DIR": str(directory),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_LOG_MIGRATIONS": "false",
            "PHOENIX_LOGGING_LEVEL": "warning",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command_prefix, str(PHOENIX), "serve"],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    @property
    def database(self) -> Path:
        return self.directory / "phoenix.db"

    def wait_ready(self, timeout: float = START_SECONDS) -> Phoenix:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Phoenix exited on start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Phoenix did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace (32 hex digits), read through Phoenix's REST API."""
        answer = httpx.get(
            f"{self.url}/v1/projects/{PROJECT}/spans",
            params={"trace_id": trace_id, "limit": 100},
            timeout=30,
        )
        if answer.status_code == 404:  # no span has arrived yet, so no project either
            return []
        answer.raise_for_status()
        return list(answer.json()["data"])

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3_000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
