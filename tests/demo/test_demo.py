"""``watchkeeper demo`` runs briefly as a real process, then its data is read through the API."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.logs.support import stored_logs
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import create_app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


WATCHKEEPER = Path(sys.executable).parent / "watchkeeper"


def clean_environment() -> dict[str, str]:
    """This process's environment without Watchkeeper settings: the demo uses its defaults."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WATCHKEEPER_", "DATABASE_URL"))
    }


def test_demo_produces_traffic_the_api_can_show(tmp_path: Path) -> None:
    script, environment, port = WATCHKEEPER, clean_environment(), str(free_port())
    result = subprocess.run(
        # A short cycle of trouble: the outage comes 6 seconds in.
        [
            str(script),
            "demo",
            *("--duration", "12", "--rate", "8", "--cycle", "10", "--port"),
            port,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # On one line, whatever the terminal's width, so it can be copied.
    key = re.search(r"API key: (\S+)\n", result.stdout)
    assert key is not None, result.stdout
    output = re.sub(r"\s+", " ", result.stdout)
    assert "Dashboard: http://127.0.0.1:" in output
    done = re.search(
        r"Done: (\d+) requests in (\d+) sessions; (\d+) events stored, (\d+) dropped", output
    )
    assert done is not None, output
    requests, sessions, stored, dropped = map(int, done.groups())
    assert requests >= 20
    assert stored > requests
    assert dropped == 0

    settings = load_settings(sqlite_path=tmp_path / "watchkeeper-demo.db", api_keys=[key.group(1)])
    auth = {"Authorization": f"Bearer {key.group(1)}"}
    with TestClient(create_app(settings)) as client:
        overview = client.get("/api/v1/overview", headers=auth).json()
        integrations = {
            item["name"] for item in client.get("/api/v1/integrations", headers=auth).json()
        }
        listed = client.get("/api/v1/sessions", headers=auth).json()["items"]
        tools = {item["name"] for item in client.get("/api/v1/kinds/tool", headers=auth).json()}
        models = client.get("/api/v1/costs/model", headers=auth).json()
        queues = client.get("/api/v1/kinds/queue", headers=auth).json()
        timeline = client.get(f"/api/v1/sessions/{listed[0]['session_id']}", headers=auth).json()
        new_errors = client.get("/api/v1/errors?flag=new", headers=auth).json()
    assert overview["headline"]["requests"] == requests
    assert {"astrology-api", "pinecone", "openai", "elevenlabs"} <= integrations
    assert len(listed) == sessions
    assert {"search_docs", "lookup_transits"} <= tools
    assert models[0]["value"] == "gpt-4o-mini"
    assert models[0]["input_tokens"] > 0
    assert queues[0]["name"] == "avatar_jobs"
    assert timeline["roots"]
    assert any(snapshot["name"] == "question" for snapshot in timeline["snapshots"])

    # The app logs through the standard library: its records are stored with their request's
    # trace, the outage's failures with their exception; its own file holds them as JSON lines.
    logs = stored_logs(settings)
    answered = [line for line in logs if line.message == "guidance answered"]
    assert answered
    assert all(line.trace_id for line in answered)
    failed = [line for line in logs if line.message == "speech synthesis failed"]
    assert failed
    assert {line.exception_type for line in failed} == {"ServiceTimeout"}
    assert all(line.trace_id for line in failed)
    # The outage is a new kind of failure: a new error group of the speech service's timeouts.
    outage = [group for group in new_errors if group["error_type"] == "ServiceTimeout"]
    assert outage, new_errors
    assert all("new" in group["flags"] for group in outage)
    written = (tmp_path / "watchkeeper-demo.log").read_text(encoding="utf-8").splitlines()
    assert len(written) >= len(answered) + len(failed)
    assert all(json.loads(line)["logger"] == "guidance" for line in written)


# A shell without job control starts background commands with SIGINT ignored, and a child
# inherits that through exec: restore the default, as a user's terminal would have it.
_WITH_DEFAULT_SIGINT = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
)


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    script, environment = WATCHKEEPER, clean_environment()
    demo = subprocess.Popen(
        [*_WITH_DEFAULT_SIGINT, str(script), "demo", "--port", str(free_port()), "--rate", "6"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "Press Ctrl-C to stop." not in seen and time.monotonic() < deadline:
        seen += demo.stdout.readline()
    time.sleep(4)  # let some traffic flow
    demo.send_signal(signal.SIGINT)
    output, errors = demo.communicate(timeout=60)
    assert demo.returncode == 0, errors
    assert "Traceback" not in errors
    done = re.search(r"Done: (\d+) requests .* (\d+) events stored, 0 dropped", output)
    assert done is not None, output
    assert int(done.group(1)) > 0
