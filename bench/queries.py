"""Overview over 24 h from rollups, beside the same figures by plain SQL over the raw rows.

Loading: raw rows go straight into ``wk_spans`` (tuples built from numpy arrays), and the same
spans' rollups are built with numpy per (name, minute), merged into hours, and written through
the store's own rollup merge. The overview is then timed through ``SqlStore.overview``.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np

from bench.common import NAMES, Result, sqlite_settings
from watchkeeper.recording.sketch import LatencySketch
from watchkeeper.storage.base import Batch, Scope, TimeRange
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.rollups import Dimension, Level, RollupDelta, RollupKey
from watchkeeper.storage.rows import RAW_TABLES
from watchkeeper.storage.sql_store import SqlStore

DAY = 86_400
CHUNK = 500_000
PLAIN_SQL = """
WITH ranked AS (
    SELECT name, duration, status,
           ROW_NUMBER() OVER (PARTITION BY name ORDER BY duration) - 1 AS position,
           COUNT(*) OVER (PARTITION BY name) AS total
    FROM wk_spans WHERE start_time >= ? AND start_time < ?
)
SELECT name, MAX(total), SUM(status = 'error'),
       MIN(CASE WHEN position >= CAST(0.50 * (total - 1) AS INTEGER) THEN duration END),
       MIN(CASE WHEN position >= CAST(0.95 * (total - 1) AS INTEGER) THEN duration END),
       MIN(CASE WHEN position >= CAST(0.99 * (total - 1) AS INTEGER) THEN duration END)
FROM ranked GROUP BY name
"""


def _load(store: SqlStore, count: int, origin: int) -> None:
    rng = np.random.default_rng(3)
    spans_table = RAW_TABLES[0]
    columns = ", ".join(spans_table.columns)
    insert = (
        f"INSERT INTO wk_spans ({columns}) VALUES ({', '.join('?' * len(spans_table.columns))})"
    )
    hours: dict[RollupKey, RollupDelta] = {}
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        starts = origin + (np.arange(first, first + size) / count) * DAY
        names = np.arange(first, first + size) % len(NAMES)
        durations = rng.lognormal(-3, 0.9, size)
        errors = rng.random(size) < 0.02
        rows = [
            (
                f"{first + i:032x}",
                f"{first + i:016x}",
                None,
                "request",
                NAMES[n],
                None,
                s,
                d,
                "error" if e else "ok",
                None,
                None,
                "bench",
                "bench",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
            for i, (n, s, d, e) in enumerate(
                zip(
                    names.tolist(),
                    starts.tolist(),
                    durations.tolist(),
                    errors.tolist(),
                    strict=True,
                )
            )
        ]
        minutes = (starts // 60 * 60).astype(np.int64)
        order = np.lexsort((minutes, names))
        keys = np.stack([names[order], minutes[order]], axis=1)
        boundaries = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
        rollups: dict[RollupKey, RollupDelta] = {}
        for group in np.split(order, boundaries):
            name, minute = NAMES[int(names[group[0]])], int(minutes[group[0]])
            sketch = LatencySketch()
            sketch.add_many(durations[group].tolist())
            delta = RollupDelta(
                len(group),
                int(errors[group].sum()),
                duration_sum=float(durations[group].sum()),
                sketch=sketch,
            )
            rollups[RollupKey(Level.MINUTE, minute, "request", name, Dimension.NONE, "")] = delta
            hour_key = RollupKey(
                Level.HOUR, minute - minute % 3600, "request", name, Dimension.NONE, ""
            )
            hours.setdefault(hour_key, RollupDelta(sketch=LatencySketch())).merge(delta)
        with write_transaction(store.engine) as connection:
            driver_connection(connection).executemany(insert, rows)
        store.write(Batch("bench", "bench", rollups=rollups))
        sys.stderr.write(f"\r  loaded {first + size:,} / {count:,} spans")
    store.write(Batch("bench", "bench", rollups=hours))
    sys.stderr.write("\n")


def _measure(count: int) -> tuple[float, float, float]:
    with sqlite_settings() as settings:
        store = open_store(settings)
        origin = int(time.time()) // 3600 * 3600 - 2 * DAY
        _load(store, count, origin)
        window = TimeRange(
            datetime.fromtimestamp(origin, UTC), datetime.fromtimestamp(origin + DAY, UTC)
        )
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            overview = store.overview(window, Scope.everything())
            timings.append(time.perf_counter() - started)
        with store.engine.connect() as connection:
            started = time.perf_counter()
            plain = (
                driver_connection(connection).execute(PLAIN_SQL, (origin, origin + DAY)).fetchall()
            )
            plain_seconds = time.perf_counter() - started
        exact = {row[0]: row for row in plain}
        worst = 0.0
        for summary in overview:
            row = exact[summary.name]
            if summary.count != row[1] or summary.errors != row[2]:
                raise RuntimeError(f"{summary.name}: counts differ from plain SQL")
            for estimate, truth in zip(
                (summary.p50, summary.p95, summary.p99), row[3:], strict=True
            ):
                worst = max(worst, abs((estimate or 0) - truth) / truth)
        store.close()
    return statistics.median(timings) * 1000, plain_seconds * 1000, worst


def run(quick: bool) -> list[Result]:
    sizes = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    results = []
    for size in sizes:
        sys.stderr.write(f"queries: {size:,} spans\n")
        ours, plain, worst = _measure(size)
        results.append(
            Result(
                f"query: 24 h overview, {size:,} spans",
                "rollups",
                ours,
                "plain SQL over raw rows",
                plain,
                "ms",
                "< 50 ms, percentiles within 2 %",
                ours < 50 and worst <= 0.02,
            )
        )
        results.append(
            Result(
                f"query: percentile error, {size:,} spans",
                "worst p50/p95/p99",
                worst * 100,
                "exact",
                0.0,
                "%",
                "≤ 2 %",
                worst <= 0.02,
            )
        )
    return results
