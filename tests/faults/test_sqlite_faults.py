"""A sick SQLite file under steady load from a real server: full, read-only, locked.

The full disk is a small tmpfs the test mounts, so it really fills up; a read-only file is made
immutable with chattr. Both need root, and the tests say so and skip without it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Load, accounted, fault_settings, run_under_load, stored_requests
from tests.support.waiting import wait_until
from watchkeeper.config import load_settings
from watchkeeper.runtime.runtime import Runtime

pytestmark = pytest.mark.slow

DISK_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs root to mount a small disk: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _failing_writes(runtime: Runtime) -> None:
    failures = runtime.recorder.stats().store_failures
    wait_until(
        lambda: runtime.recorder.stats().store_failures >= failures + 3, what="writes failing"
    )


def _serving_on(load: Load) -> None:
    sent = load.sent
    wait_until(lambda: load.sent >= sent + 200, timeout=60, what="the app serving meanwhile")


def test_a_full_disk_loses_nothing_once_there_is_room_again(small_disk: Path) -> None:
    database = small_disk / "watchkeeper.db"
    filler = small_disk / "filler"

    def fill_then_free(runtime: Runtime, load: Load) -> None:
        # Unbuffered: closing the file must not try again to write what did not fit.
        with filler.open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    os.fsync(handle.fileno())
            except OSError:
                pass  # the disk is full
        _failing_writes(runtime)
        _serving_on(load)
        filler.unlink()

    runtime, load = run_under_load(fault_settings(sqlite_path=database), fill_then_free)
    stored = stored_requests(load_settings(sqlite_path=database))
    accounted("a full disk loses nothing once there is room again", runtime, load, stored)
    assert stored == load.sent


def test_a_file_turned_read_only_loses_nothing_once_writable(tmp_path: Path) -> None:
    database = tmp_path / "watchkeeper.db"
    files = [database, database.with_name(database.name + "-wal")]

    def read_only_for_a_while(runtime: Runtime, load: Load) -> None:
        # Immutable: refused even through the connections already open, and even to root.
        made = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"needs chattr to make a file read-only: {made.stderr.decode().strip()}")
        try:
            _failing_writes(runtime)
            _serving_on(load)
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], check=True)

    runtime, load = run_under_load(fault_settings(sqlite_path=database), read_only_for_a_while)
    stored = stored_requests(load_settings(sqlite_path=database))
    accounted("a file turned read only loses nothing once writable", runtime, load, stored)
    assert stored == load.sent


def test_a_file_locked_by_another_process_loses_nothing(tmp_path: Path) -> None:
    database = tmp_path / "watchkeeper.db"

    def lock_for_a_while(runtime: Runtime, load: Load) -> None:
        other = sqlite3.connect(database, isolation_level=None, timeout=60)
        try:
            other.execute("BEGIN EXCLUSIVE")
            _failing_writes(runtime)
            _serving_on(load)
        finally:
            other.execute("COMMIT")
            other.close()

    runtime, load = run_under_load(fault_settings(sqlite_path=database), lock_for_a_while)
    stored = stored_requests(load_settings(sqlite_path=database))
    accounted("a file locked by another process loses nothing", runtime, load, stored)
    assert stored == load.sent
