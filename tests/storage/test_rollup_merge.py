"""Rollups merged batch after batch hold what one batch of every span would have written."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.model.rollups import Dimension, Level, RollupDelta, RollupKey, build_rollups
from watchkeeper.model.sketch import LatencySketch
from watchkeeper.storage import sql_writer
from watchkeeper.storage.dialect import Dialect
from watchkeeper.storage.engine import driver_connection
from watchkeeper.storage.schema import rollups
from watchkeeper.storage.sql_store import SqlStore


def _traffic(seed: int, count: int) -> list[Span]:
    """Spans over two hours (so minutes and hours both span batches), every dimension set."""
    rng = random.Random(seed)
    return [
        span(
            T0 + 7200 * index / count,
            rng.lognormvariate(-3, 1.2),
            kind=rng.choice([SpanKind.REQUEST, SpanKind.INTEGRATION]),
            name=rng.choice(["a", "b", "c"]),
            error=rng.random() < 0.1,
            org_id=rng.choice(["o1", "o2", None]),
            user_id=rng.choice(["u1", "u2", "u3", None]),
            model=rng.choice(["m1", None]),
            input_tokens=rng.choice([None, rng.randint(1, 500)]),
            cost=rng.choice([None, rng.random() / 100]),
        )
        for index in range(count)
    ]


def _stored(store: SqlStore) -> dict[RollupKey, RollupDelta]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(rollups)).all()
    stored = {}
    for row in rows:
        key = RollupKey(
            Level(row.level), row.bucket, row.kind, row.name, Dimension(row.dimension), row.value
        )
        sketch = None if row.sketch is None else LatencySketch.from_bytes(bytes(row.sketch))
        stored[key] = RollupDelta(
            row.count,
            row.errors,
            row.input_tokens,
            row.output_tokens,
            row.cost,
            row.cost_unknown,
            row.duration_sum,
            sketch,
        )
    return stored


def _sums(delta: RollupDelta) -> tuple[Any, ...]:
    return (delta.count, delta.errors, delta.input_tokens, delta.output_tokens, delta.cost_unknown)


def test_batch_after_batch_stores_the_rollups_of_all_spans_at_once(store: SqlStore) -> None:
    spans = _traffic(seed=3, count=3_000)
    # Uneven batches: each brings keys already stored (merged) and new ones (inserted whole),
    # and the last repeats the first minutes' keys after many others were written.
    bounds = [0, 7, 400, 401, 1_500, 2_990, 3_000]
    for start, end in pairwise(bounds):
        store.write(batch_of(spans[start:end]))
    store.write(batch_of(spans[:5]))

    expected = build_rollups(spans + spans[:5])
    stored = _stored(store)
    assert set(stored) == set(expected)
    for key, delta in expected.items():
        kept = stored[key]
        assert _sums(kept) == _sums(delta), key
        # Sketches merge by adding counts: exactly the sketch of every value, byte for byte.
        assert (kept.sketch is None) == (key.dimension is Dimension.USER), key
        if delta.sketch is not None and kept.sketch is not None:
            assert kept.sketch.to_bytes() == delta.sketch.to_bytes(), key
        # Float sums added in another order may differ in the last bits only.
        assert abs(kept.duration_sum - delta.duration_sum) <= 1e-9 * delta.duration_sum, key
        assert abs(kept.cost - delta.cost) <= 1e-9 * max(delta.cost, 1e-12), key


def test_a_key_written_once_is_stored_as_its_delta(store: SqlStore) -> None:
    spans = _traffic(seed=5, count=200)
    store.write(batch_of(spans))
    assert _stored(store) == build_rollups(spans)


def test_postgresql_reads_and_writes_back_stored_sketches_by_key(store: SqlStore) -> None:
    """With many rollup rows stored, merging a batch seeks each key, never scans the table."""
    if store.dialect is not Dialect.POSTGRESQL:
        pytest.skip("SQLite reads one key at a time: see test_write_plans")
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO wk_rollups SELECT 'h', 3600 * (g / 2000), 'request', '', 'user', "
                "'u' || mod(g, 2000), 1, 0, 0, 0, 0, 0, 0.1, NULL "
                "FROM generate_series(1, 200000) AS g"
            )
        )
        connection.execute(text("ANALYZE wk_rollups"))
    spans = _traffic(seed=9, count=2_000)
    store.write(batch_of(spans))
    deltas = build_rollups(spans)
    rows = [
        sql_writer._plain(key) + sql_writer._values(delta)
        for key, delta in sorted(deltas.items())
        if delta.sketch is not None
    ]
    statements = (
        (sql_writer._READ_POSTGRESQL, [row[:6] for row in rows]),
        (sql_writer._REPLACE_POSTGRESQL, rows),
    )
    with store.engine.connect() as connection:
        cursor = driver_connection(connection).cursor()
        for statement, values in statements:
            cursor.execute("EXPLAIN " + statement, sql_writer._arrays(values))
            plan = "\n".join(line for (line,) in cursor.fetchall())
            assert "Seq Scan on wk_rollups" not in plan, plan
            assert "Index Scan" in plan, plan
