from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.support.stores import batch_of, span
from watchkeeper._version import __version__
from watchkeeper.cli.main import app
from watchkeeper.config import load_settings
from watchkeeper.recording.model import SpanKind
from watchkeeper.storage import migrate as migrations
from watchkeeper.storage.factory import open_store

runner = CliRunner()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "WATCHKEEPER_DATABASE_URL", "WATCHKEEPER_SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_version_from_the_installed_script() -> None:
    script = Path(sys.executable).parent / "watchkeeper"
    result = subprocess.run([str(script), "version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"watchkeeper {__version__}"


def test_migrate_creates_the_store_then_walks_down_and_up(in_tmp: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (in_tmp / "watchkeeper.db").exists()
    assert f"Revision after: {migrations.head_revision()} (head)" in result.output
    down = runner.invoke(app, ["migrate", "--down", "base"])
    assert "Revision after: none" in down.output
    assert migrations.current_revision(f"sqlite:///{in_tmp / 'watchkeeper.db'}") is None
    again = runner.invoke(app, ["migrate"])
    assert "(head)" in again.output


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WATCHKEEPER_BUFFER_SIZE", "abc", "WATCHKEEPER_BUFFER_SIZE"),
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL"),
    ],
)
def test_bad_settings_exit_2_with_advice_not_a_traceback(
    in_tmp: Path, variable: str, value: str, named: str
) -> None:
    script = Path(sys.executable).parent / "watchkeeper"
    result = subprocess.run(
        [str(script), "migrate"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", variable: value},
        cwd=in_tmp,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.postgres
def test_migrate_on_postgresql(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    separator = "&" if "?" in postgres_url else "?"
    monkeypatch.setenv(
        "DATABASE_URL", f"{postgres_url}{separator}options=-csearch_path%3D{postgres_schema}"
    )
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "PostgreSQL at" in result.output
    assert "(head)" in result.output


def write_integration_calls(path: Path, errors: int, total: int = 40) -> None:
    store = open_store(load_settings(sqlite_path=path))
    now = time.time()
    store.write(
        batch_of(
            [
                span(
                    now - 60 + index,
                    0.2,
                    kind=SpanKind.INTEGRATION,
                    name="openai",
                    error=index < errors,
                )
                for index in range(total)
            ]
        )
    )
    store.close()


@pytest.mark.parametrize(
    ("errors", "code", "word"), [(0, 0, "pass"), (4, 1, "warn"), (20, 2, "fail")]
)
def test_status_exit_codes_follow_integration_health(
    in_tmp: Path, errors: int, code: int, word: str
) -> None:
    write_integration_calls(in_tmp / "watchkeeper.db", errors)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == code, result.output
    assert f"Watchkeeper status: {word}" in result.output
    assert "integration openai" in result.output


def test_status_fails_when_the_store_is_unreachable(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:hunter2@127.0.0.1:1/x")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "check DATABASE_URL" in result.output
    assert "hunter2" not in result.output


def test_retention_reports_per_table(in_tmp: Path) -> None:
    write_integration_calls(in_tmp / "watchkeeper.db", 0)
    result = runner.invoke(app, ["retention"])
    assert result.exit_code == 0, result.output
    assert "spans: 0 deleted" in result.output


def test_serve_answers_health_and_the_api_with_a_key(in_tmp: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(sys.executable).parent / "watchkeeper"
    environment = {"PATH": "/usr/bin:/bin", "WATCHKEEPER_API_KEYS": '["serve-key-0123456789"]'}
    server = subprocess.Popen(
        [str(script), "serve", "--port", str(port)],
        cwd=in_tmp,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                live = httpx.get(f"{base}/health/live", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        assert live.status_code == 200
        assert httpx.get(f"{base}/api/v1/overview").status_code == 401
        auth = {"Authorization": "Bearer serve-key-0123456789"}
        assert httpx.get(f"{base}/api/v1/overview", headers=auth).status_code == 200
        assert "Watchkeeper" in httpx.get(f"{base}/").text
    finally:
        server.terminate()
        output, errors = server.communicate(timeout=20)
    assert f"Dashboard: http://127.0.0.1:{port}/" in output
    assert "Traceback" not in errors


def test_serve_without_a_key_refuses_to_start(in_tmp: Path) -> None:
    script = Path(sys.executable).parent / "watchkeeper"
    result = subprocess.run(
        [str(script), "serve"],
        cwd=in_tmp,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "WATCHKEEPER_API_KEYS" in result.stderr
    assert "Traceback" not in result.stderr
