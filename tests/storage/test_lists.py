"""Span, log and metric lists: newest-first pages, cursors, filters, text search, scope."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import LogLevel, LogRecord, MetricKind, MetricPoint, SpanKind
from watchkeeper.model.ids import format_trace_id
from watchkeeper.model.query import Scope, SpanFilter, TimeRange
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
NO_FILTER = SpanFilter()
HOUR = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC))


def test_span_pages_walk_everything_newest_first_even_with_equal_times(store: SqlStore) -> None:
    # Several spans share a start time, so the cursor must break ties by id.
    spans = [span(T0 + i // 3, 0.1, name=f"n{i}") for i in range(25)]
    store.write(batch_of(spans))

    seen, cursor, pages = [], None, 0
    while True:
        page = store.spans(HOUR, EVERYTHING, limit=10, cursor=cursor)
        seen.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert sorted(s.name for s in seen) == sorted(s.name for s in spans)
    starts = [s.start for s in seen]
    assert starts == sorted(starts, reverse=True)


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", "", base64.urlsafe_b64encode(b"nan/3").decode(), "MTIz", "%%%"],
)
def test_an_invalid_cursor_is_a_query_error(store: SqlStore, cursor: str) -> None:
    with pytest.raises(QueryError, match="invalid cursor"):
        store.spans(HOUR, EVERYTHING, cursor=cursor)
    with pytest.raises(QueryError, match="invalid cursor"):
        store.logs(HOUR, EVERYTHING, cursor=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_outside_one_to_a_thousand_is_a_query_error(store: SqlStore, limit: int) -> None:
    with pytest.raises(QueryError, match="limit"):
        store.spans(HOUR, EVERYTHING, limit=limit)


def test_span_filters_and_scopes_narrow_lists_and_traces(store: SqlStore) -> None:
    root = span(T0 + 1, org_id="o1", user_id="u1", session_id="s1")
    child = span(
        T0 + 2, kind=SpanKind.TOOL, name="search", error=True, trace_id=root.trace_id,
        parent_id=root.span_id, org_id="o1", user_id="u1", session_id="s1",
    )  # fmt: skip
    other = span(T0 + 3, org_id="o2", user_id="u2")
    store.write(batch_of([root, child, other]))

    def names(scope: Scope, span_filter: SpanFilter = NO_FILTER) -> list[str]:
        return [s.name for s in store.spans(HOUR, scope, span_filter).items]

    assert names(EVERYTHING) == ["GET /items", "search", "GET /items"]
    assert names(Scope.organisation("o2")) == ["GET /items"]
    assert names(Scope.user("u1")) == ["search", "GET /items"]
    assert names(Scope.user("u1", org_id="o2")) == []
    assert names(EVERYTHING, SpanFilter(kind=SpanKind.TOOL)) == ["search"]
    assert names(EVERYTHING, SpanFilter(status=child.status)) == ["search"]
    assert names(EVERYTHING, SpanFilter(session_id="s1", name="GET /items")) == ["GET /items"]
    trace_id = format_trace_id(root.trace_id)
    assert names(EVERYTHING, SpanFilter(trace_id=trace_id.upper())) == ["search", "GET /items"]

    assert [s.name for s in store.trace(trace_id, EVERYTHING)] == ["GET /items", "search"]
    assert store.trace(trace_id, Scope.organisation("o2")) == []
    assert len(store.trace(trace_id, Scope.user("u1", "o1"))) == 2


def _log(offset: float, message: str, level: int = LogLevel.INFO, **fields: object) -> LogRecord:
    return LogRecord(T0 + offset, level, "app", message, **fields)  # type: ignore[arg-type]


def test_log_text_search_treats_percent_and_underscore_literally(store: SqlStore) -> None:
    messages = ["100% done", "100 percent done", "set user_id", "set userXid", "back\\slash"]
    store.write(Batch("api", "h", logs=[_log(i, m) for i, m in enumerate(messages)]))

    def search(text: str) -> list[str]:
        return [r.message for r in store.logs(HOUR, EVERYTHING, text=text).items]

    assert search("100%") == ["100% done"]
    assert search("USER_ID") == ["set user_id"]
    assert search("_") == ["set user_id"]
    assert search("%") == ["100% done"]
    assert search("k\\s") == ["back\\slash"]
    assert search("DONE") == ["100 percent done", "100% done"]


def test_logs_filter_by_level_trace_and_scope_and_page(store: SqlStore) -> None:
    trace_id = 0xABC
    records = [
        _log(1, "debug", LogLevel.DEBUG, org_id="o1", user_id="u1"),
        _log(2, "warn", LogLevel.WARNING, trace_id=trace_id, org_id="o1", user_id="u1"),
        _log(3, "error", LogLevel.ERROR, org_id="o2", user_id="u2"),
        *(_log(10 + i, f"bulk {i}") for i in range(15)),
    ]
    store.write(Batch("api", "h", logs=records))

    def messages(scope: Scope = EVERYTHING, **query: object) -> list[str]:
        return [r.message for r in store.logs(HOUR, scope, **query).items]  # type: ignore[arg-type]

    assert messages(min_level=LogLevel.WARNING) == ["error", "warn"]
    assert messages(trace_id=format_trace_id(trace_id)) == ["warn"]
    assert messages(Scope.organisation("o1")) == ["warn", "debug"]
    assert messages(Scope.user("u2")) == ["error"]
    first = store.logs(HOUR, EVERYTHING, limit=10)
    second = store.logs(HOUR, EVERYTHING, limit=10, cursor=first.next_cursor)
    assert [r.message for r in first.items][:2] == ["bulk 14", "bulk 13"]
    assert len(first.items) == 10
    assert len(second.items) == 8
    assert second.next_cursor is None


def test_metric_points_come_oldest_first_and_respect_scope(store: SqlStore) -> None:
    points = [
        MetricPoint(T0 + 30, "credits", MetricKind.COUNTER, 3.0, "o1"),
        MetricPoint(T0 + 10, "credits", MetricKind.COUNTER, 1.0, "o2"),
        MetricPoint(T0 + 20, "credits", MetricKind.COUNTER, 2.0, "o1"),
        MetricPoint(T0 + 20, "cpu", MetricKind.GAUGE, 0.5),
    ]
    store.write(Batch("api", "h", metrics=points))

    assert [p.value for p in store.metrics(HOUR, EVERYTHING, "credits")] == [1.0, 2.0, 3.0]
    assert [p.value for p in store.metrics(HOUR, Scope.organisation("o1"), "credits")] == [2, 3]
    assert [p.value for p in store.metrics(HOUR, EVERYTHING, "credits", limit=2)] == [1.0, 2.0]
    assert store.metrics(HOUR, Scope.user("u1", "o1"), "credits") == []
