"""Several processes writing the same store at once: no lost rows, rollup or session counts."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from multiprocessing.synchronize import Event

import pytest

from tests.support.stores import T0, StoreTarget, batch_of, span
from watchkeeper.model.events import SessionMark
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.model.rollups import Dimension
from watchkeeper.storage import migrate
from watchkeeper.storage.sql_store import SqlStore

PROCESSES, BATCHES, SPANS_PER_BATCH, SESSIONS = 4, 12, 150, 6


def write_batches(target: StoreTarget, seed: int, start: Event) -> None:
    """Run in a child process: write batches whose rollup keys overlap every other writer's."""
    store = SqlStore(target.engine())
    store.ping()
    start.wait(timeout=60)  # every writer connected, so their batches really interleave
    try:
        for number in range(BATCHES):
            base = T0 + number * 45  # same minutes and hours in every process
            spans = [
                span(
                    base + i * 0.3,
                    0.05 + seed / 100,
                    name=f"n{i % 5}",
                    org_id=f"o{i % 3}",
                    user_id=f"u{(i + seed) % 7}",
                    model="m",
                    session_id=f"s{i % SESSIONS}",  # every session in every process
                    input_tokens=1,
                )
                for i in range(SPANS_PER_BATCH)
            ]
            # s0's spans are all of o0 (i % 6 == 0): its marks are too.
            marks = [SessionMark(base + seed, "s0", ended=True, org_id="o0")]
            store.write(batch_of(spans, session_marks=marks))
    finally:
        store.close()


@pytest.mark.slow
def test_four_processes_write_one_store_without_errors_or_losses(target: StoreTarget) -> None:
    store = SqlStore(target.engine())
    migrate.upgrade(store.engine)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=write_batches, args=(target, seed, start))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
    try:
        assert [worker.exitcode for worker in workers] == [0] * PROCESSES
        total = PROCESSES * BATCHES * SPANS_PER_BATCH
        assert store.count(RetainedTable.SPANS) == total
        everything = TimeRange(
            datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86_400, UTC)
        )
        summaries = store.overview(everything, Scope.everything())
        assert sum(s.count for s in summaries) == total
        usage = store.usage(everything, Scope.everything(), dimension=Dimension.USER)
        assert sum(row.count for row in usage) == total
        sessions = store.sessions(everything, Scope.everything()).items
        assert {s.session_id: s.spans for s in sessions} == dict.fromkeys(
            (f"s{n}" for n in range(SESSIONS)), total // SESSIONS
        )
        assert sum(s.input_tokens for s in sessions) == total
        ended = {s.session_id: s.ended_at for s in sessions}
        last_mark = T0 + (BATCHES - 1) * 45 + PROCESSES - 1
        assert ended == {"s0": datetime.fromtimestamp(last_mark, UTC)} | {
            f"s{n}": None for n in range(1, SESSIONS)
        }
    finally:
        store.close()
