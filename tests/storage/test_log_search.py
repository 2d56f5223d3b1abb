"""Log search: full-text words (FTS5, tsvector), substrings, filters, pages and retention, with
the same answers from SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.stores import T0
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import LogLevel, LogRecord
from watchkeeper.model.ids import format_trace_id
from watchkeeper.model.query import LogFilter, RetainedTable, Scope, TimeRange
from watchkeeper.storage import sql_logs
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
HOUR = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC))

RECORDS = [
    # (offset, level, logger, message, attributes, extra fields)
    (1, LogLevel.INFO, "app.chart", "Chart computed for user 42", {"house": "Scorpio"}, {}),
    (2, LogLevel.WARNING, "app.chart", "chart-service slow: 3012 ms", {"region": "eu-west"}, {}),
    (3, LogLevel.ERROR, "app.pay", "Payment failed: card_declined", None, {"user_id": "u7"}),
    (4, LogLevel.INFO, "app.pay", "payment retried, ok", {"attempt": 2}, {"session_id": "s1"}),
    (5, LogLevel.INFO, "uvicorn", "GET /api/chart 200", None, {"source": "/var/log/app.log"}),
    (6, LogLevel.INFO, "app.chart", "Café horoscope ready", {"lang": "fr"}, {}),
    (7, LogLevel.ERROR, "app.chart", "chart failed", None,
     {"exception": "Traceback…\nKeyError: 'ascendant'", "exception_type": "KeyError"}),
    (8, LogLevel.DEBUG, "app.chart", "cache hit 100% for chart", None, {"trace_id": 0xABC}),
]  # fmt: skip


@pytest.fixture
def filled(store: SqlStore) -> SqlStore:
    records = [
        LogRecord(T0 + offset, int(level), logger, message, attributes=attributes, **extra)  # type: ignore[arg-type]
        for offset, level, logger, message, attributes, extra in RECORDS
    ]
    store.write(Batch("api", "host-1", logs=records))
    store.write(Batch("worker", "host-2", logs=[LogRecord(T0 + 9, 20, "jobs", "chart job done")]))
    return store


def _search(store: SqlStore, query: str | None = None, **fields: object) -> list[str]:
    where = LogFilter(query=query, **fields)  # type: ignore[arg-type]
    return [record.message for record in store.logs(HOUR, EVERYTHING, where=where).items]


SEARCHES = [
        # A word matches the words it begins, whatever the case, in message or attributes.
        ("chart", ["chart job done", "cache hit 100% for chart", "chart failed",
                   "GET /api/chart 200", "chart-service slow: 3012 ms",
                   "Chart computed for user 42"]),
        ("CHART slow", ["chart-service slow: 3012 ms"]),
        ("service", ["chart-service slow: 3012 ms"]),
        ("scorp", ["Chart computed for user 42"]),  # an attribute's value
        ("house", ["Chart computed for user 42"]),  # and its key
        ("eu west", ["chart-service slow: 3012 ms"]),
        ("card declined", ["Payment failed: card_declined"]),  # "_" splits words
        ("3012", ["chart-service slow: 3012 ms"]),
        ("ascendant", ["chart failed"]),  # the exception's text
        ("café", ["Café horoscope ready"]),
        ("caf", ["Café horoscope ready"]),
        ("cafe", []),  # accents are kept, alike in both stores
        ("payment ok", ["payment retried, ok"]),
        ("api 200", ["GET /api/chart 200"]),
        ("nothing", []),
        ("hart", []),  # words match from their start
]  # fmt: skip
# SQLite's two plans (see sql_logs): every search taken as common, every search as rare.
PLANS = {"range first": 1, "matches first": 10**9}


@pytest.fixture(params=list(PLANS.values()), ids=list(PLANS))
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_logs, "COMMON_MATCHES", request.param)


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
@pytest.mark.usefixtures("plan")
def test_full_text_search_finds_the_same_records_in_both_stores(
    filled: SqlStore, query: str, expected: list[str]
) -> None:
    assert _search(filled, query) == expected


def test_filters_narrow_a_search(filled: SqlStore) -> None:
    assert _search(filled, "chart", logger="app.chart") == [
        "cache hit 100% for chart",
        "chart failed",
        "chart-service slow: 3012 ms",
        "Chart computed for user 42",
    ]
    assert _search(filled, "chart", service="worker") == ["chart job done"]
    assert _search(filled, None, user_id="u7") == ["Payment failed: card_declined"]
    assert _search(filled, None, session_id="s1") == ["payment retried, ok"]
    assert _search(filled, None, source="/var/log/app.log") == ["GET /api/chart 200"]
    trace = format_trace_id(0xABC)
    found = filled.logs(HOUR, EVERYTHING, trace_id=trace, where=LogFilter(query="cache")).items
    assert [(r.message, r.trace_id) for r in found] == [("cache hit 100% for chart", trace)]
    warnings = filled.logs(HOUR, EVERYTHING, int(LogLevel.WARNING), where=LogFilter(query="chart"))
    assert [r.message for r in warnings.items] == ["chart failed", "chart-service slow: 3012 ms"]
    # A substring and words together; the substring keeps "%" literal.
    both = filled.logs(HOUR, EVERYTHING, text="100%", where=LogFilter(query="cache"))
    assert [r.message for r in both.items] == ["cache hit 100% for chart"]


def test_a_record_keeps_its_session_exception_group_and_source(filled: SqlStore) -> None:
    (failed,) = filled.logs(HOUR, EVERYTHING, where=LogFilter(query="ascendant")).items
    assert (failed.exception_type, failed.exception) == (
        "KeyError",
        "Traceback…\nKeyError: 'ascendant'",
    )
    assert failed.error_group is not None
    assert len(failed.error_group) == 32
    (grouped,) = filled.logs(
        HOUR, EVERYTHING, where=LogFilter(error_group=failed.error_group)
    ).items
    assert grouped.message == "chart failed"
    (plain,) = filled.logs(HOUR, EVERYTHING, where=LogFilter(query="retried")).items
    assert (plain.session_id, plain.error_group, plain.source) == ("s1", None, None)


@pytest.mark.usefixtures("plan")
def test_search_pages_walk_every_match_newest_first(store: SqlStore) -> None:
    records = [
        LogRecord(T0 + i // 4, 20, "app", f"{'match' if i % 3 else 'other'} number {i}")
        for i in range(90)
    ]
    store.write(Batch("api", "h", logs=records))
    seen, cursor = [], None
    while True:
        page = store.logs(HOUR, EVERYTHING, limit=7, cursor=cursor, where=LogFilter("match"))
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(r.message for r in seen) == sorted(
        r.message for r in records if r.message.startswith("match")
    )
    keys = [r.time for r in seen]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("query", ["", "  ", "%%% ---", "_"])
def test_a_search_without_words_is_a_query_error(store: SqlStore, query: str) -> None:
    with pytest.raises(QueryError, match="at least one word"):
        store.logs(HOUR, EVERYTHING, where=LogFilter(query=query))


def test_search_syntax_in_a_query_is_taken_as_words(filled: SqlStore) -> None:
    # FTS5 and tsquery operators are never passed through: only the words are searched for.
    assert _search(filled, 'chart AND NOT "slow" OR *') == []
    assert _search(filled, "chart & !slow | (x:*)") == []
    assert _search(filled, "chart' OR '1'='1") == []
    assert _search(filled, "slow: (chart)") == ["chart-service slow: 3012 ms"]


def test_retention_removes_logs_from_the_search_index_too(store: SqlStore) -> None:
    old = [LogRecord(T0 + i, 20, "app", f"ancient chart {i}") for i in range(5)]
    new = [LogRecord(T0 + 1000 + i, 20, "app", f"recent chart {i}") for i in range(3)]
    store.write(Batch("api", "h", logs=old + new))
    removed = store.delete_expired(
        RetainedTable.LOGS, datetime.fromtimestamp(T0 + 500, UTC), batch_size=100
    )
    assert removed == 5
    assert _search(store, "chart") == ["recent chart 2", "recent chart 1", "recent chart 0"]
    assert _search(store, "ancient") == []
    # New rows after a delete are indexed as before.
    store.write(Batch("api", "h", logs=[LogRecord(T0 + 2000, 20, "app", "ancient again")]))
    assert _search(store, "ancient") == ["ancient again"]
