"""A batch written once is never written twice, whoever sends it again: the worker retrying a
write whose answer was lost, or a spool replaying it after a restart."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.errors import BatchRejected
from watchkeeper.model.events import MetricKind, MetricPoint
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.recording.codec import UnreadableEvents, decode_events, encode_events
from watchkeeper.storage.retention import RetentionPolicy, apply_retention
from watchkeeper.storage.sql_store import SqlStore

DAY = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86_400, UTC))
WEEK = timedelta(days=7)


def test_the_same_batch_written_again_is_stored_once(store: SqlStore) -> None:
    batch = batch_of([span(T0 + i, 0.2, session_id="s1", error=i == 0) for i in range(10)])
    store.write(batch)
    store.write(batch)  # its first write's answer lost: the worker tries again
    assert store.count(RetainedTable.SPANS) == 10
    [summary] = store.overview(DAY, Scope.everything())
    assert (summary.count, summary.errors) == (10, 1)
    [session] = store.sessions(DAY, Scope.everything()).items
    assert session.spans == 10
    [group] = store.error_groups(DAY, Scope.everything())
    assert group.count == 1

    # Another batch of the same events is other events: stored again.
    store.write(batch_of(batch.spans))
    assert store.count(RetainedTable.SPANS) == 20


def test_a_write_that_failed_leaves_its_batch_id_free(store: SqlStore) -> None:
    """The id is recorded in the batch's own transaction: a write rolled back claimed nothing."""
    spans = [span(T0 + i, 0.1) for i in range(5)]
    # A metric without a value violates NOT NULL after the spans went in.
    broken = MetricPoint(T0, "broken", MetricKind.GAUGE, None)  # type: ignore[arg-type]
    failed = batch_of(spans, metrics=[broken])
    with pytest.raises(BatchRejected):
        store.write(failed)
    assert store.count(RetainedTable.WRITTEN_BATCHES) == 0
    store.write(replace(failed, metrics=[]))
    assert store.count(RetainedTable.SPANS) == 5


def test_batch_ids_are_kept_as_long_as_spans(store: SqlStore) -> None:
    store.write(batch_of([span(T0, 0.2)]))
    policy = RetentionPolicy(WEEK, WEEK, WEEK, WEEK, WEEK)
    now = datetime.now(UTC)
    assert apply_retention(store, policy, now=now)[RetainedTable.WRITTEN_BATCHES] == 0
    later = now + WEEK + timedelta(minutes=1)
    assert apply_retention(store, policy, now=later)[RetainedTable.WRITTEN_BATCHES] == 1


@pytest.mark.parametrize("forged", ["7", -1, 0, 2**63, 1.5, True])
def test_an_events_document_with_a_forged_batch_id_is_unreadable(forged: object) -> None:
    document = encode_events(batch_of([span(T0, 0.2)]))
    body = orjson.loads(document[1:])
    body["batch"] = forged
    with pytest.raises(UnreadableEvents):
        decode_events(document[:1] + orjson.dumps(body))
