"""The app's logs: cost of one captured record on the request path, and tail's ingest rate.

Capture: ``logger.info("order %s placed", n, extra={...})`` inside a request span, on a logger
whose one handler is Watchkeeper's capture handler, beside the same call on a logger whose one
handler is a ``NullHandler`` and one whose one handler is a ``StreamHandler`` writing to
``/dev/null``. Timed in blocks of ``batch_size`` calls, the recorder's buffer drained between
blocks, untimed (no worker thread: the caller's cost), blocks interleaved, median reported.

Tail: a file of Python logging lines (every 50th with a traceback) read by ``Tailer.drain()``
into a started recorder writing a SQLite store, timed until ``flush()`` returns; beside the raw
insert of the same records' ``wk_logs`` rows by one ``executemany`` per 5,000, a transaction
each, into a freshly migrated store (the same table, indexes and full-text triggers).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Result, sqlite_settings
from watchkeeper.config import load_settings
from watchkeeper.logs.capture import CaptureHandler
from watchkeeper.logs.tail.offsets import Offsets
from watchkeeper.logs.tail.tailer import Tailer
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import LogRecord, SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.handle import StoreHandle
from watchkeeper.storage.rows import prepare
from watchkeeper.testing import MemorySink

BATCH = 5_000


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [handler]
    return logger


def capture(quick: bool) -> list[Result]:
    rounds = 20 if quick else 60
    recorder = Recorder(load_settings(buffer_size=10_000_000), sink=MemorySink())
    block = recorder.settings.batch_size
    devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    loggers = {
        "capture": _logger("capture", CaptureHandler(recorder, logging.INFO)),
        "null": _logger("null", logging.NullHandler()),
        "stream": _logger("stream", logging.StreamHandler(devnull)),
    }

    def timed(logger: logging.Logger, calls: int) -> float:
        with recorder.span("POST /orders", SpanKind.REQUEST) as request:
            request.user_id = "user-1"
            started = time.perf_counter()
            for number in range(calls):
                logger.info("order %s placed", number, extra={"order": number, "channel": "web"})
            elapsed = (time.perf_counter() - started) / calls
        recorder._buffer.clear()  # the worker's drain, untimed
        return elapsed

    for logger in loggers.values():  # warm up
        timed(logger, block)
    samples: dict[str, list[float]] = {name: [] for name in loggers}
    for _ in range(rounds):
        for name, logger in loggers.items():
            samples[name].append(timed(logger, block))
    devnull.close()
    if recorder.stats().dropped_total:
        raise RuntimeError("records were dropped: the measurement would not be of the enqueue")
    median = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    return [
        Result(
            "log capture: one record vs NullHandler",
            "logger.info(…) captured",
            median["capture"],
            "logger.info(…) to a NullHandler",
            median["null"],
            "µs",
            "(comparison)",
            True,
        ),
        Result(
            "log capture: one record vs StreamHandler",
            "logger.info(…) captured",
            median["capture"],
            "logger.info(…) to a StreamHandler",
            median["stream"],
            "µs",
            "(comparison)",
            True,
        ),
    ]


def _write_file(path: Path, count: int) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    writer = _logger("file", handler)
    for number in range(count):
        if number % 50 == 0:
            try:
                raise TimeoutError(f"gateway slow for order {number}")
            except TimeoutError:
                writer.exception("order %d failed", number)
        else:
            writer.info("order %d placed for user-%d", number, number % 1000)
    handler.close()


def _tail(path: Path, count: int) -> tuple[float, list[LogRecord]]:
    with sqlite_settings(flush_interval=0.05) as settings:
        stores = StoreHandle(settings)
        stores.open_in_background()
        stores.wait_first_attempt(30)
        recorder = Recorder(settings, sink=stores).start()
        with tempfile.TemporaryDirectory() as offsets:
            started = time.perf_counter()
            tailer = Tailer(recorder, [path], Offsets(Path(offsets)))
            tailer.drain()
            if not recorder.flush(600):
                raise RuntimeError("the store did not take the records")
            elapsed = time.perf_counter() - started
        stats = recorder.stats()
        recorder.stop()
        stores.close()
    if tailer.counts.records != count or stats.dropped_total:
        raise RuntimeError(f"lost records: {tailer.counts.records} of {count}, {stats.dropped}")
    # The same records, parsed again (untimed), for the raw insert.
    sink = MemorySink()
    parser = Recorder(load_settings(buffer_size=10_000_000), sink=sink).start()
    with tempfile.TemporaryDirectory() as offsets:
        Tailer(parser, [path], Offsets(Path(offsets))).drain()
    parser.stop()
    return count / elapsed, list(sink.logs)


def _raw(records: list[LogRecord]) -> float:
    with sqlite_settings() as settings:
        store = open_store(settings)
        batches = []
        for index in range(0, len(records), BATCH):
            [(table, rows)] = prepare(
                Batch("bench", "raw", logs=records[index : index + BATCH])
            ).raw
            batches.append(rows)
        columns = ", ".join(table.columns)
        insert = f"INSERT INTO {table.table.name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"
        started = time.perf_counter()
        for rows in batches:
            with write_transaction(store.engine) as connection:
                driver_connection(connection).executemany(insert, rows)
        elapsed = time.perf_counter() - started
        store.close()
    return len(records) / elapsed


def ingest(quick: bool) -> list[Result]:
    count = 20_000 if quick else 200_000
    rounds = 1 if quick else 3
    tail_rates, raw_rates = [], []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "app.log"
        _write_file(path, count)
        for _ in range(rounds):
            rate, records = _tail(path, count)
            tail_rates.append(rate)
            raw_rates.append(_raw(records))
    tail_rate, raw_rate = statistics.median(tail_rates), statistics.median(raw_rates)
    return [
        Result(
            "tail ingest into SQLite",
            "watchkeeper tail (read, parse, pipeline, write)",
            tail_rate,
            "raw executemany of the rows",
            raw_rate,
            "records/s",
            "(comparison)",
            True,
        )
    ]


def run(quick: bool) -> list[Result]:
    return capture(quick) + ingest(quick)


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
