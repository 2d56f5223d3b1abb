"""``watchkeeper tail`` following a file another process writes and rotates: every record
stored exactly once, also across a restart of the tail while the file rotated."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.logs.support import store_settings, stored_logs
from tests.recording.support import make_recorder
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.config import Settings
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.tailer import Tailer
from watchkeeper.runtime.runtime import create_app
from watchkeeper.testing import MemorySink

WRITER = Path(__file__).with_name("log_writer.py")
SCRIPT = Path(sys.executable).parent / "watchkeeper"
RECORDS = 2_000
FILE_BYTES = 30_000
"""About 350 records a file: several rotations per run."""


def environment(settings: Settings, directory: Path) -> dict[str, str]:
    url = settings.database_url
    assert url is not None
    return {
        **os.environ,
        "WATCHKEEPER_DATABASE_URL": url.get_secret_value(),
        "WATCHKEEPER_TAIL_STATE_DIR": str(directory / "offsets"),
        "WATCHKEEPER_FLUSH_INTERVAL": "0.1",
    }


def write(path: Path, first: int, count: int) -> None:
    subprocess.run(
        [sys.executable, str(WRITER), str(path), str(first), str(count), str(FILE_BYTES)],
        check=True,
        timeout=120,
    )


def start_tail(path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(SCRIPT), "tail", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop_tail(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output.decode()
    return output.decode()


def messages(settings: Settings) -> Counter[str]:
    return Counter(line.message for line in stored_logs(settings))


def expected(first: int, count: int) -> Counter[str]:
    return Counter(
        f"record {number} failed" if number % 25 == 0 else f"record {number}"
        for number in range(first, first + count)
    )


def test_a_rotating_file_written_by_another_process_is_stored_exactly_once(
    tmp_path: Path,
) -> None:
    settings = store_settings(tmp_path)
    path = tmp_path / "logs" / "app.log"
    path.parent.mkdir()
    write(path, 0, 1)
    tail = start_tail(path, environment(settings, tmp_path))
    try:
        wait_until(lambda: messages(settings), 120, "the tail to follow the file")
        write(path, 1, RECORDS - 1)  # while the tail follows, rotating several times
        assert len(list(path.parent.glob("app.log.*"))) >= 3
        wait_until(lambda: sum(messages(settings).values()) >= RECORDS, 120, "every record")
    finally:
        output = stop_tail(tail)
    assert messages(settings) == expected(0, RECORDS), output
    lines_written = sum(
        len(file.read_text(encoding="utf-8").splitlines()) for file in path.parent.iterdir()
    )
    assert f"Read {lines_written} lines into {RECORDS} records." in output
    failed = [line for line in stored_logs(settings) if line.level == logging.ERROR]
    assert len(failed) == RECORDS // 25
    assert all(line.logger == "shop.writer" for line in failed)
    assert {line.exception_type for line in failed} == {"TimeoutError"}
    assert {line.source for line in stored_logs(settings)} == {str(path)}


def test_a_restarted_tail_resumes_from_its_offset_though_the_file_rotated_meanwhile(
    tmp_path: Path,
) -> None:
    settings = store_settings(tmp_path)
    env = environment(settings, tmp_path)
    path = tmp_path / "logs" / "app.log"
    path.parent.mkdir()
    half = RECORDS // 2
    write(path, 0, 1)
    tail = start_tail(path, env)
    try:
        wait_until(lambda: messages(settings), 120, "the tail to follow the file")
        write(path, 1, half - 1)
        wait_until(lambda: sum(messages(settings).values()) >= half, 120, "the first half")
    finally:
        stop_tail(tail)
    rotated_before = len(list(path.parent.glob("app.log.*")))
    write(path, half, RECORDS - half)  # no tail running: rotates past where it stopped
    assert len(list(path.parent.glob("app.log.*"))) > rotated_before + 1
    tail = start_tail(path, env)
    try:
        wait_until(lambda: sum(messages(settings).values()) >= RECORDS, 120, "the second half")
    finally:
        output = stop_tail(tail)
    assert messages(settings) == expected(0, RECORDS), output
    # The second run read only what the first had not recorded.
    assert f"into {RECORDS - half} records." in output


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    sink = MemorySink()
    recorder = make_recorder(sink).start()
    path = tmp_path / "app.log"
    path.write_text("INFO:shop:before one\nINFO:shop:before two\n", encoding="utf-8")
    tailer = Tailer(recorder, [path], Offsets(tmp_path / "offsets"))
    tailer.poll()
    # copytruncate: the same file, emptied in place, then written again.
    with path.open("r+", encoding="utf-8") as file:
        file.truncate(0)
    tailer.poll()
    with path.open("a", encoding="utf-8") as file:
        file.write("INFO:shop:after\n")
    tailer.drain()
    recorder.stop()
    assert [log.message for log in sink.logs] == ["before one", "before two", "after"]
    assert tailer.counts.records == 3


def test_serve_follows_the_files_its_setting_names(
    tmp_path: Path, store_options: dict[str, object]
) -> None:
    path = tmp_path / "access.log"
    path.write_text('INFO:     10.0.0.1:5000 - "GET /a HTTP/1.1" 200 OK\n', encoding="utf-8")
    settings = store_settings(
        tmp_path,
        api_keys="serve-key-0123456789abcdef",
        tail_paths=str(path),
        tail_state_dir=str(tmp_path / "offsets"),
        **store_options,
    )
    server = LiveServer(create_app(settings)).start()
    try:
        wait_until(lambda: messages(settings), 60, "the first line")
        with path.open("a", encoding="utf-8") as file:
            file.write('INFO:     10.0.0.1:5000 - "POST /b HTTP/1.1" 201 Created\n')
        wait_until(lambda: sum(messages(settings).values()) == 2, 60, "the second line")
    finally:
        server.stop()
    targets = {line.attributes["target"] for line in stored_logs(settings)}
    assert targets == {"/a", "/b"}
    # Stopped with the server, after saving how far it read.
    assert Offsets(tmp_path / "offsets").load(path.absolute()) is not None
