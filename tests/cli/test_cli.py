from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.support.stores import batch_of, span
from watchkeeper._version import __version__
from watchkeeper.cli.main import app
from watchkeeper.config import load_settings
from watchkeeper.model.events import SpanKind
from watchkeeper.storage import migrate as migrations
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.schema import VERSION_TABLE

runner = CliRunner()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in (
        "WATCHKEEPER_DATABASE_URL",
        "WATCHKEEPER_DATABASE_SCHEMA",
        "WATCHKEEPER_SQLITE_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_version_from_the_installed_script() -> None:
    script = Path(sys.executable).parent / "watchkeeper"
    result = subprocess.run([str(script), "version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"watchkeeper {__version__}"


def test_migrate_creates_the_store_then_walks_down_and_up(in_tmp: Path) -> None:
    chain = migrations.revisions()
    store = in_tmp / "watchkeeper.db"
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert store.exists()
    assert "Store: SQLite file watchkeeper.db" in result.output
    assert "Revision before: none (empty store)" in result.output
    assert [f"applying {revision}" in result.output for revision in chain] == [True] * len(chain)
    assert f"Revision after: {migrations.head_revision()} (head)" in result.output

    down = runner.invoke(app, ["migrate", "--down", "base"])
    assert down.exit_code == 0, down.output
    assert [f"reverting {revision}" in down.output for revision in chain] == [True] * len(chain)
    assert "Revision after: none" in down.output
    assert migrations.current_revision(f"sqlite:///{store}") is None

    again = runner.invoke(app, ["migrate"])
    assert again.exit_code == 0, again.output
    assert migrations.current_revision(f"sqlite:///{store}") == migrations.head_revision()
    assert runner.invoke(app, ["migrate"]).output.count("Nothing to do.") == 1


def test_migrate_one_revision_at_a_time(in_tmp: Path) -> None:
    first, second = migrations.revisions()[:2]
    url = f"sqlite:///{in_tmp / 'watchkeeper.db'}"
    result = runner.invoke(app, ["migrate", "--revision", first])
    assert result.exit_code == 0, result.output
    assert f"applying {second}" not in result.output
    assert migrations.current_revision(url) == first

    assert runner.invoke(app, ["migrate", "--revision", second]).exit_code == 0
    assert migrations.current_revision(url) == second
    assert runner.invoke(app, ["migrate", "--down", first]).exit_code == 0
    assert migrations.current_revision(url) == first


def test_migrate_refuses_an_unknown_revision_before_touching_the_store(in_tmp: Path) -> None:
    result = runner.invoke(app, ["migrate", "--revision", "nosuch"])
    assert result.exit_code == 2
    assert "no revision 'nosuch'" in result.output
    assert not (in_tmp / "watchkeeper.db").exists()


def test_migrate_says_which_way_to_go(in_tmp: Path) -> None:
    first, second = migrations.revisions()[:2]
    assert runner.invoke(app, ["migrate", "--revision", first]).exit_code == 0
    up_by_down = runner.invoke(app, ["migrate", "--down", second])
    assert up_by_down.exit_code == 2
    assert f"watchkeeper migrate --revision {second}" in up_by_down.output
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    down_by_up = runner.invoke(app, ["migrate", "--revision", first])
    assert down_by_up.exit_code == 2
    assert f"watchkeeper migrate --down {first}" in down_by_up.output
    assert migrations.current_revision(f"sqlite:///{in_tmp / 'watchkeeper.db'}") == (
        migrations.head_revision()
    )


def test_migrate_on_a_store_from_a_newer_watchkeeper_exits_2(in_tmp: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    with sqlite3.connect(in_tmp / "watchkeeper.db") as connection:
        connection.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "9999_future" in result.output
    assert "newer Watchkeeper" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WATCHKEEPER_BUFFER_SIZE", "abc", "WATCHKEEPER_BUFFER_SIZE"),
        ("WATCHKEEPER_DATABASE_URL", "mysql://root@localhost/x", "WATCHKEEPER_DATABASE_URL"),
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
def test_migrate_on_postgresql_hides_the_password_and_walks_down_and_up(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trusted local server ignores the password; it is there to be hidden.
    url = make_url(postgres_url).set(password="not-shown-anywhere")
    monkeypatch.setenv("WATCHKEEPER_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("WATCHKEEPER_DATABASE_SCHEMA", postgres_schema)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "Store: PostgreSQL at" in result.output
    assert "not-shown-anywhere" not in result.output
    assert f"Revision after: {migrations.head_revision()} (head)" in result.output
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name LIKE 'wk\\_%%'",
            (postgres_schema,),
        ).fetchone()
    assert tables is not None
    assert tables[0] > 1

    down = runner.invoke(app, ["migrate", "--down", "base"])
    assert down.exit_code == 0, down.output
    assert "Revision after: none (empty store)" in down.output
    again = runner.invoke(app, ["migrate"])
    assert again.exit_code == 0, again.output
    assert "(head)" in again.output


def _assert_repaired(drop: Callable[[str], None], count_spans: Callable[[], int]) -> None:
    """The store is at head; ``drop`` runs one DDL statement on it behind Watchkeeper's back."""
    drop("DROP TABLE wk_sessions")
    drop("DROP INDEX ix_wk_spans_trace_id")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "Recreated what was missing: wk_sessions, ix_wk_spans_trace_id" in result.output
    assert "Nothing to do." not in result.output
    assert "Nothing to do." in runner.invoke(app, ["migrate"]).output  # whole again

    store = open_store(load_settings(migrate_on_start=False))
    try:  # the recreated table takes writes, and so do the others
        store.write(batch_of([span(time.time(), session_id="s1")]))
    finally:
        store.close()
    assert count_spans() == 1


def test_migrate_recreates_a_dropped_table_and_index_on_sqlite(in_tmp: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    path = in_tmp / "watchkeeper.db"

    def execute(statement: str) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute(statement)

    def count_spans() -> int:
        with sqlite3.connect(path) as connection:
            return int(connection.execute("SELECT count(*) FROM wk_spans").fetchone()[0])

    _assert_repaired(execute, count_spans)


@pytest.mark.postgres
def test_migrate_recreates_a_dropped_table_and_index_on_postgresql(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEPER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("WATCHKEEPER_DATABASE_SCHEMA", postgres_schema)
    assert runner.invoke(app, ["migrate"]).exit_code == 0

    def execute(statement: str) -> None:
        with psycopg.connect(postgres_url) as connection:
            connection.execute(f'SET search_path TO "{postgres_schema}"')
            connection.execute(statement)  # type: ignore[arg-type]

    def count_spans() -> int:
        with psycopg.connect(postgres_url) as connection:
            row = connection.execute(
                f'SELECT count(*) FROM "{postgres_schema}".wk_spans'  # type: ignore[arg-type]
            ).fetchone()
        assert row is not None
        return int(row[0])

    _assert_repaired(execute, count_spans)


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
    assert "spans: 40 integration" in result.output
    # The newest span ended about 20 s before the data was written.
    last_write = re.search(r"last write (\d+) s ago", result.output)
    assert last_write is not None, result.output
    assert 19 <= int(last_write.group(1)) < 60


def test_status_fails_when_the_store_is_unreachable(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEPER_DATABASE_URL", "postgresql://nobody:hunter2@127.0.0.1:1/x")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "check WATCHKEEPER_DATABASE_URL" in result.output
    assert "hunter2" not in result.output


def test_retention_deletes_what_is_older_than_its_period(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(load_settings(sqlite_path=in_tmp / "watchkeeper.db"))
    now = time.time()
    store.write(batch_of([span(now - 7200 + index) for index in range(30)]))
    store.write(batch_of([span(now - 60 + index) for index in range(5)]))
    store.close()
    monkeypatch.setenv("WATCHKEEPER_RETENTION_SPANS", "3600")
    result = runner.invoke(app, ["retention"])
    assert result.exit_code == 0, result.output
    assert "Store: SQLite file watchkeeper.db" in result.output
    assert "spans: 30 deleted so far" in result.output
    assert "          spans: 30 deleted" in result.output
    assert "   hour_rollups: 0 deleted" in result.output
    with sqlite3.connect(in_tmp / "watchkeeper.db") as connection:
        kept = connection.execute("SELECT count(*) FROM wk_spans").fetchone()
    assert kept == (5,)


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
