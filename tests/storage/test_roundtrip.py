"""Writing batches and reading every field back; failed batches leave nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.error_groups import log_fingerprint
from watchkeeper.model.errors import BatchRejected, StoreUnavailable
from watchkeeper.model.events import LogLevel, LogRecord, MetricKind, MetricPoint, SpanKind
from watchkeeper.model.ids import format_span_id, format_trace_id
from watchkeeper.model.query import RetainedTable, Scope, TimeRange
from watchkeeper.model.stored import StoredLog, StoredMetric, StoredSpan
from watchkeeper.storage import sql_writer
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
DAY = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0, UTC) + timedelta(1))


def test_spans_logs_and_metrics_read_back_with_every_field(store: SqlStore) -> None:
    root = span(T0 + 10.25, 1.5, name="POST /chat", user_id="u1", org_id="o1", session_id="s1")
    child = span(
        T0 + 10.5,
        0.75,
        kind=SpanKind.INTEGRATION,
        name="openai",
        error=True,
        trace_id=root.trace_id,
        parent_id=root.span_id,
        operation="chat.completions",
        error_type="RateLimitError",
        error_message="slow down ☃",
        user_id="u1",
        org_id="o1",
        session_id="s1",
        model="gpt-4o",
        input_tokens=120,
        output_tokens=30,
        cost=0.0042,
        attributes={"retries": 2, "region": "eu", "when": datetime(2024, 1, 1)},
    )
    log = LogRecord(
        T0 + 10.6, LogLevel.WARNING, "app.chat", "rate limited", root.trace_id, child.span_id,
        user_id="u1", org_id="o1", attributes={"attempt": 1},
    )  # fmt: skip
    metric = MetricPoint(T0 + 11, "queue.depth", MetricKind.GAUGE, 7.5, "o1", {"queue": "jobs"})
    store.write(batch_of([root, child], logs=[log], metrics=[metric]))

    trace_id = format_trace_id(root.trace_id)
    assert store.trace(trace_id, EVERYTHING) == [
        StoredSpan(
            trace_id, format_span_id(root.span_id), None, "request", "POST /chat", None,
            datetime.fromtimestamp(T0 + 10.25, UTC), 1.5, "ok", None, None, "api", "host-1",
            "u1", "o1", "s1", None, None, None, None, {},
        ),
        StoredSpan(
            trace_id, format_span_id(child.span_id), format_span_id(root.span_id),
            "integration", "openai", "chat.completions", datetime.fromtimestamp(T0 + 10.5, UTC),
            0.75, "error", "RateLimitError", "slow down ☃", "api", "host-1", "u1", "o1", "s1",
            "gpt-4o", 120, 30, 0.0042,
            {"retries": 2, "region": "eu", "when": "2024-01-01 00:00:00"},
        ),
    ]  # fmt: skip
    grouped = log_fingerprint(log)  # a warning: grouped by its template
    assert grouped is not None
    assert store.logs(DAY, EVERYTHING).items == [
        StoredLog(
            datetime.fromtimestamp(T0 + 10.6, UTC), 30, "app.chat", "rate limited", trace_id,
            format_span_id(child.span_id), "api", "host-1", "u1", "o1", {"attempt": 1},
            error_group=grouped[0].hash,
        )
    ]  # fmt: skip
    assert store.metrics(DAY, EVERYTHING, "queue.depth") == [
        StoredMetric(
            datetime.fromtimestamp(T0 + 11, UTC), "queue.depth", "gauge", 7.5, "api", "host-1",
            "o1", {"queue": "jobs"},
        )
    ]  # fmt: skip
    assert store.count(RetainedTable.SPANS) == 2
    assert store.count(RetainedTable.MINUTE_ROLLUPS) > 0
    assert store.count(RetainedTable.HOUR_ROLLUPS) > 0


def test_a_batch_that_fails_half_way_stores_nothing(store: SqlStore) -> None:
    good = [span(T0 + i, 0.1, org_id="o1", user_id="u1", model="m") for i in range(50)]
    log = LogRecord(T0, LogLevel.INFO, "app", "hello")
    # A metric without a value violates NOT NULL after the spans and logs went in.
    broken = MetricPoint(T0, "broken", MetricKind.GAUGE, None)  # type: ignore[arg-type]

    # The value itself is wrong, so retrying cannot help: the batch is rejected, not unavailable.
    with pytest.raises(BatchRejected, match="could not write a batch of 52 events"):
        store.write(batch_of(good, logs=[log], metrics=[broken]))

    for table in RetainedTable:
        assert store.count(table) == 0, table
    store.write(batch_of(good, logs=[log]))
    assert store.count(RetainedTable.SPANS) == 50
    assert store.overview(DAY, EVERYTHING)[0].count == 50


def test_a_batch_whose_rollups_fail_rolls_back_its_raw_rows(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(batch_of([span(T0 + 5, 0.2)]))

    def failing_merge(connection: Connection, *_: object) -> None:
        connection.execute(text("SELECT * FROM wk_no_such_table"))

    monkeypatch.setattr(sql_writer, "merge_rollups", failing_merge)
    with pytest.raises(
        StoreUnavailable,
        match=r"could not write a batch of 2 events \(2 spans\): .*wk_no_such_table",
    ):
        store.write(batch_of([span(T0 + 6, 0.2), span(T0 + 65, 0.3)]))
    monkeypatch.undo()

    assert store.count(RetainedTable.SPANS) == 1
    assert [summary.count for summary in store.overview(DAY, EVERYTHING)] == [1]
