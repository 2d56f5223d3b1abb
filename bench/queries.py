"""Overview over 24 h from rollups, beside the same figures by plain SQL over the raw rows.

Loading, per chunk of 200,000 spans: the spans are generated with numpy (20 names, 1,000 users,
5 organisations, 2 % errors, log-normal durations; the ``openai`` spans carry a model, tokens and
a cost) and turned into real ``Span`` objects. Their ``wk_spans`` rows are built by the product's
own row builder (``RAW_TABLES[0].build``) and bulk-inserted with one ``executemany``; their
rollups come from the product's ``build_rollups`` (every level and dimension the flush worker
writes: per name, organisation, model and user) and are written through ``SqlStore.write`` with
a rollups-only batch, i.e. the store's own read-merge-write. The overview is then timed through
``SqlStore.overview`` (median of 5), beside one run of plain SQL over ``wk_spans``: counts and
errors per name, and exact percentiles from window functions (rows ranked by duration per name).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np

from bench.common import NAMES, Result, sqlite_settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import build_rollups
from watchkeeper.storage.engine import driver_connection, write_transaction
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.rows import RAW_TABLES
from watchkeeper.storage.sql_store import SqlStore

DAY = 86_400
CHUNK = 200_000
INTEGRATIONS = {"openai", "elevenlabs", "pinecone", "astrology-api"}
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


def _spans(rng: np.random.Generator, first: int, size: int, count: int, origin: int) -> list[Span]:
    index = np.arange(first, first + size)
    starts = (origin + index / count * DAY).tolist()
    names = (index % len(NAMES)).tolist()
    durations = rng.lognormal(-3, 0.9, size).tolist()
    errors = (rng.random(size) < 0.02).tolist()
    users = rng.integers(0, 1_000, size).tolist()
    orgs = rng.integers(0, 5, size).tolist()
    spans = []
    for i in range(size):
        name = NAMES[names[i]]
        span = Span(
            SpanKind.INTEGRATION if name in INTEGRATIONS else SpanKind.REQUEST,
            name,
            starts[i],
            durations[i],
            first + i + 1,
            first + i + 1,
            status=SpanStatus.ERROR if errors[i] else SpanStatus.OK,
            user_id=f"user-{users[i]}",
            org_id=f"org-{orgs[i]}",
        )
        if name == "openai":
            span.model = "gpt-4o-mini"
            span.input_tokens, span.output_tokens, span.cost = 420, 180, 0.00017
        spans.append(span)
    return spans


def _load(store: SqlStore, count: int, origin: int) -> None:
    rng = np.random.default_rng(3)
    spans_table = RAW_TABLES[0]
    columns = ", ".join(spans_table.columns)
    marks = ", ".join("?" * len(spans_table.columns))
    insert = f"INSERT INTO {spans_table.table.name} ({columns}) VALUES ({marks})"
    started = time.perf_counter()
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        spans = _spans(rng, first, size, count, origin)
        rows = spans_table.build(Batch("bench", "bench", spans=spans))
        with write_transaction(store.engine) as connection:
            driver = driver_connection(connection)
            # Loading only: a 2 GB page cache keeps the per-user/org/session index inserts from
            # re-reading pages as the table grows (SQLite's default cache is 2 MB).
            driver.execute("PRAGMA cache_size = -2000000")
            driver.executemany(insert, rows)
        store.write(Batch("bench", "bench", rollups=build_rollups(spans)))
        sys.stderr.write(
            f"\r  loaded {first + size:,} / {count:,} spans ({time.perf_counter() - started:.0f} s)"
        )
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


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)
