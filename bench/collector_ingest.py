"""Spans per second a collector process stores when four app processes ship to it at once.

A real ``watchkeeper collector`` process takes frames on a Unix socket; four sender processes,
each with a ``Recorder`` shipping to it (as an instrumented app's workers do), submit their
share of realistic spans as fast as they can and wait until the collector has acknowledged
every frame — which it does once the frame's events are written to the store. The rate is all
spans over the time from the first submit to the last acknowledgement, so it counts decoding,
aggregation and writing in the collector. Beside it, in the same run: the store's raw load of
the same rows (``bench.ingest``'s baseline), and the collector's CPU per span.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from multiprocessing.synchronize import Barrier
from pathlib import Path

import psutil
from sqlalchemy import func, select

from bench.common import (
    Result,
    postgres_available,
    postgres_settings,
    realistic_spans,
    sqlite_settings,
)
from bench.ingest import TARGET, raw_load
from watchkeeper.collector.connect import RemoteCollector
from watchkeeper.config import Address, Settings, settings_document
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.schema import spans
from watchkeeper.testing import MemorySink

SENDERS = 4
START_SECONDS = 120.0


def _send(
    document: dict[str, object], socket_path: str, count: int, seed: int, barrier: Barrier
) -> None:
    from watchkeeper.config import load_settings  # noqa: PLC0415 - in the sender process

    settings = load_settings(**{**document, "buffer_size": count + 1_000})
    spans = realistic_spans(count, seed=seed)
    collector = RemoteCollector(
        Address("unix", path=Path(socket_path)), settings.service, f"sender-{seed}"
    )
    # The sink is only the fallback's, should the collector be unreachable: it must stay empty.
    fallback = MemorySink()
    recorder = Recorder(settings, sink=fallback, collector=collector).start()
    barrier.wait(START_SECONDS)
    submit = recorder.submit
    for span in spans:
        submit(span)
    if not recorder.flush(600):
        raise RuntimeError("the collector did not acknowledge everything in time")
    recorder.stop()
    if fallback.spans():
        raise RuntimeError("the sender wrote spans itself: the collector was not reachable")


def _collector(settings: Settings, socket_path: Path) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        **{
            f"WATCHKEEPER_{name.upper()}": str(value)
            for name, value in settings_document(settings).items()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
        },
    }
    environment["WATCHKEEPER_OPEN_ACCESS"] = "true"
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("watchkeeper")),
            "collector",
            "--listen",
            f"unix:{socket_path}",
            "--port",
            "0",
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
    )


def _measure(
    settings_factory: Callable[..., AbstractContextManager[Settings]], count: int
) -> tuple[float, float]:
    """(spans/s stored through the collector, collector CPU µs per span)."""
    with (
        settings_factory(batch_size=10_000) as settings,
        tempfile.TemporaryDirectory(prefix="wk-", dir="/tmp") as directory,
    ):
        socket_path = Path(directory) / "c.sock"
        collector = _collector(settings, socket_path)
        try:
            deadline = time.monotonic() + START_SECONDS
            while not socket_path.exists():
                if collector.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the collector did not start")
                time.sleep(0.05)
            process = psutil.Process(collector.pid)
            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(SENDERS + 1)
            share = count // SENDERS
            document = settings_document(settings)
            senders = [
                context.Process(
                    target=_send, args=(document, str(socket_path), share, seed, barrier)
                )
                for seed in range(1, SENDERS + 1)
            ]
            for sender in senders:
                sender.start()
            barrier.wait(START_SECONDS)
            cpu_before = sum(process.cpu_times()[:2])
            started = time.monotonic()
            for sender in senders:
                sender.join()
            elapsed = time.monotonic() - started
            cpu = sum(process.cpu_times()[:2]) - cpu_before
            if any(sender.exitcode for sender in senders):
                raise RuntimeError("a sender failed")
        finally:
            collector.terminate()
            collector.wait(60)
        total = share * SENDERS
        stored = _stored_spans(settings)
        if stored < total:
            raise RuntimeError(f"the collector stored {stored:,} of {total:,} spans")
        return total / elapsed, cpu / total * 1e6


def _stored_spans(settings: Settings) -> int:
    store = open_store(settings)
    try:
        with store.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(spans)).scalar_one())
    finally:
        store.close()


def raw_rate(factory: Callable[..., AbstractContextManager[Settings]], count: int) -> float:
    with factory() as settings:
        return raw_load(settings, count).rate


def _rows(engine: str, rate: float, cpu: float, raw: float) -> list[Result]:
    return [
        Result(
            f"collector ingest, {SENDERS} senders → {engine}",
            "spans/s stored",
            rate,
            f"raw load ({engine})",
            raw,
            "spans/s",
            f"≥ {TARGET:,} spans/s",
            rate >= TARGET,
        ),
        Result(
            f"collector CPU per span ({engine})",
            "collector process",
            cpu,
            "",
            0.0,
            "µs",
            "(figure)",
            True,
        ),
    ]


def run(quick: bool) -> list[Result]:
    count = 40_000 if quick else 200_000
    rate, cpu = _measure(sqlite_settings, count)
    results = _rows("SQLite", rate, cpu, raw_rate(sqlite_settings, count))
    if postgres_available():
        rate, cpu = _measure(postgres_settings, count)
        results += _rows("PostgreSQL", rate, cpu, raw_rate(postgres_settings, count))
    return results


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
