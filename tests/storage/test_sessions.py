"""Sessions: totals merged across batches, the sessions list, and one session's timeline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import SessionMark, Severity, Snapshot, SpanKind, ValidationResult
from watchkeeper.model.ids import format_span_id, format_trace_id
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.sessions import SessionDelta, SessionKey
from watchkeeper.model.stored import StoredSession
from watchkeeper.storage.sql_queries import encode_cursor
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
DAY = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86_400, UTC))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_session_totals_add_up_across_batches_and_marks(store: SqlStore) -> None:
    store.write(
        batch_of([span(T0 + 10, 1.0, session_id="s1", org_id="o1", input_tokens=5, cost=0.5)])
    )
    store.write(
        batch_of(
            [
                span(T0 + 5, 0.5, session_id="s1", user_id="u1", org_id="o1", error=True),
                span(T0 + 30, 2.0, session_id="s1", user_id="u9", org_id="o1", output_tokens=7,
                     cost=0.25),
            ]
        )
    )  # fmt: skip
    # A later "ended" mark, then an earlier one from another process: the latest end wins.
    for at, ended in ((40, True), (35, True), (1, False)):
        mark = SessionMark(T0 + at, "s1", ended=ended, org_id="o1")
        store.write(batch_of([], session_marks=[mark]))

    (session,) = store.sessions(DAY, EVERYTHING).items
    assert session == StoredSession(
        session_id="s1",
        user_id="u1",  # the first user seen is kept, a later one does not overwrite it
        org_id="o1",
        first_seen=_at(T0 + 1),
        last_seen=_at(T0 + 40),
        ended_at=_at(T0 + 40),
        spans=3,
        errors=1,
        input_tokens=5,
        output_tokens=7,
        cost=0.75,
    )
    assert session.ended


def test_a_session_without_an_end_mark_has_not_ended(store: SqlStore) -> None:
    store.write(batch_of([span(T0, 1.0, session_id="open")]))
    delta = SessionDelta(T0 + 5, T0 + 6, spans=1)
    store.write(Batch("api", "h", sessions={SessionKey("open", None): delta}))
    (session,) = store.sessions(DAY, EVERYTHING).items
    assert (session.ended_at, session.spans, session.last_seen) == (None, 2, _at(T0 + 6))
    assert session.org_id is None  # stored as "no organisation", read back as none


def _sessions(store: SqlStore, count: int) -> None:
    spans = [
        span(
            T0 + 100 + i // 2,  # pairs share a last_seen, so pages must break ties by id
            0.0,
            session_id=f"chat/{i:02d}",
            user_id=f"user-{i % 3}",
            org_id="o1" if i % 2 else "o2",
        )
        for i in range(count)
    ]
    store.write(batch_of(spans))


def _every_page(store: SqlStore, limit: int) -> list[StoredSession]:
    """Every session, page after page of ``limit``, following each page's cursor."""
    seen: list[StoredSession] = []
    cursor = None
    while True:
        page = store.sessions(DAY, EVERYTHING, limit=limit, cursor=cursor)
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_sessions_page_newest_first_by_last_seen_with_ties(store: SqlStore) -> None:
    _sessions(store, 25)
    seen = [s.session_id for s in _every_page(store, 7)]
    assert seen == sorted((f"chat/{i:02d}" for i in range(25)), reverse=True)
    with pytest.raises(QueryError, match="invalid cursor"):
        store.sessions(DAY, EVERYTHING, cursor="nope")
    with pytest.raises(QueryError, match="limit"):
        store.sessions(DAY, EVERYTHING, limit=1001)


def test_sessions_are_chosen_by_last_seen_scope_and_search(store: SqlStore) -> None:
    _sessions(store, 12)
    store.write(batch_of([span(T0 + 90_000, 0.0, session_id="tomorrow", user_id="user-1")]))

    def ids(scope: Scope = EVERYTHING, search: str | None = None) -> set[str]:
        return {s.session_id for s in store.sessions(DAY, scope, search).items}

    assert len(ids()) == 12  # "tomorrow" lies outside the range
    assert ids(Scope.organisation("o1")) == {f"chat/{i:02d}" for i in range(1, 12, 2)}
    assert ids(Scope.user("user-1", "o1")) == {"chat/01", "chat/07"}
    assert ids(search="chat/1") == {"chat/10", "chat/11"}
    assert ids(search="chat/03") == {"chat/03"}
    assert ids(search="user-2") == {"chat/02", "chat/05", "chat/08", "chat/11"}
    assert ids(search="user") == ids()  # a prefix of every user id
    assert ids(search="CHAT/") == set()  # case-sensitive on both databases
    assert ids(search="%") == set()  # no LIKE wildcards
    assert ids(search="hat") == set()  # a prefix, not a substring


def test_session_detail_is_the_timeline_of_spans_snapshots_and_validations(
    store: SqlStore,
) -> None:
    root = span(T0 + 10, 5.0, name="ws /guide", kind=SpanKind.WEBSOCKET, session_id="g1",
                user_id="u1", org_id="o1")  # fmt: skip
    tool = span(T0 + 12, 1.0, name="lookup", kind=SpanKind.TOOL, trace_id=root.trace_id,
                parent_id=root.span_id, session_id="g1", user_id="u1", org_id="o1")  # fmt: skip
    agent = span(T0 + 11, 2.0, name="planner", kind=SpanKind.AGENT, trace_id=root.trace_id,
                 parent_id=root.span_id, session_id="g1", user_id="u1", org_id="o1")  # fmt: skip
    elsewhere = span(T0 + 11, 1.0, session_id="other", user_id="u2", org_id="o1")
    snapshot = Snapshot(T0 + 11.5, "birth", {"date": "1990-01-01", "nested": {"x": [1, 2]}},
                        root.trace_id, agent.span_id, "g1", "u1", "o1")  # fmt: skip
    results = [
        ValidationResult(T0 + 13, "range", "answer.age", False, 212.0, "0..120",
                         Severity.ERROR, "age out of range", root.trace_id, tool.span_id,
                         "g1", "u1", "o1"),
        ValidationResult(T0 + 12.5, "sign", "answer.sign", True, "Leo", "Leo", Severity.INFO,
                         session_id="g1", user_id="u1", org_id="o1"),
    ]  # fmt: skip
    store.write(batch_of([root, tool, agent, elsewhere], snapshots=[snapshot],
                         validations=results))  # fmt: skip

    detail = store.session("g1", EVERYTHING)
    assert detail is not None
    assert detail.session.spans == 3
    assert [s.name for s in detail.spans] == ["ws /guide", "planner", "lookup"]
    assert detail.spans[1].parent_id == format_span_id(root.span_id)
    (stored,) = detail.snapshots
    assert (stored.name, stored.data, stored.time) == ("birth", snapshot.data, _at(T0 + 11.5))
    assert stored.trace_id == format_trace_id(root.trace_id)
    assert stored.span_id == format_span_id(agent.span_id)
    assert [(v.validator, v.passed, v.observed) for v in detail.validations] == [
        ("sign", True, "Leo"),
        ("range", False, 212.0),
    ]
    assert detail.validations[1].severity == "error"
    assert detail.validations[1].message == "age out of range"
    assert not detail.truncated

    assert store.session("g1", Scope.user("u1", "o1")) is not None
    assert store.session("g1", Scope.organisation("o2")) is None
    assert store.session("g1", Scope.user("u2")) is None
    assert store.session("missing", EVERYTHING) is None


def _two_organisations(store: SqlStore) -> None:
    """Session "s1" in organisations A and B, with their own spans, snapshots and validations;
    A's last seen later."""
    check = ValidationResult(T0 + 32, "a-check", "t", False, 1.0, "0", Severity.ERROR, "a",
                             session_id="s1", org_id="A")  # fmt: skip
    a = span(T0 + 30, 5.0, name="a call", session_id="s1", user_id="ua", org_id="A",
             input_tokens=100, cost=1.0, error=True)  # fmt: skip
    b = [span(T0 + i, 1.0, name="b call", session_id="s1", user_id="ub", org_id="B",
              input_tokens=7) for i in (1, 2)]  # fmt: skip
    store.write(
        batch_of(
            [a, *b],
            snapshots=[
                Snapshot(T0 + 31, "a-snap", {"who": "A"}, session_id="s1", org_id="A"),
                Snapshot(T0 + 2, "b-snap", {"who": "B"}, session_id="s1", org_id="B"),
            ],
            validations=[check],
            session_marks=[SessionMark(T0 + 20, "s1", ended=True, org_id="B")],
        )
    )


def test_equal_session_ids_of_two_organisations_stay_two_sessions(store: SqlStore) -> None:
    _two_organisations(store)
    # A later batch adds to each organisation's own row.
    store.write(batch_of([span(T0 + 3, 1.0, session_id="s1", org_id="B", input_tokens=1)]))

    listed = {s.org_id: s for s in store.sessions(DAY, EVERYTHING).items}
    assert set(listed) == {"A", "B"}
    a, b = listed["A"], listed["B"]
    assert (a.user_id, a.spans, a.errors, a.input_tokens, a.cost) == ("ua", 1, 1, 100, 1.0)
    assert (b.user_id, b.spans, b.errors, b.input_tokens, b.cost) == ("ub", 3, 0, 15, 0.0)
    assert (a.ended_at, b.ended_at) == (None, _at(T0 + 20))  # B's end mark ends B's only

    (only_b,) = store.sessions(DAY, Scope.organisation("B")).items
    assert only_b == b


def test_a_session_detail_holds_only_its_organisations_rows(store: SqlStore) -> None:
    _two_organisations(store)

    detail = store.session("s1", Scope.organisation("B"))
    assert detail is not None
    assert (detail.session.org_id, detail.session.spans) == ("B", 2)
    assert {s.name for s in detail.spans} == {"b call"}
    assert [s.name for s in detail.snapshots] == ["b-snap"]
    assert detail.validations == []

    # Seeing every organisation, the session seen last answers; the scope names another.
    everywhere = store.session("s1", EVERYTHING)
    assert everywhere is not None
    assert (everywhere.session.org_id, [s.name for s in everywhere.spans]) == ("A", ["a call"])
    assert [s.name for s in everywhere.snapshots] == ["a-snap"]
    assert [v.validator for v in everywhere.validations] == ["a-check"]
    assert store.session("s1", Scope.organisation("C")) is None


def test_a_mark_joins_the_session_of_its_own_organisation(store: SqlStore) -> None:
    store.write(batch_of([span(T0, 1.0, session_id="s1", org_id="A")]))
    store.write(batch_of([], session_marks=[SessionMark(T0 + 5, "s1", ended=True)]))

    listed = {s.org_id: s for s in store.sessions(DAY, EVERYTHING).items}
    assert (listed["A"].ended_at, listed["A"].spans) == (None, 1)
    assert (listed[None].ended_at, listed[None].spans) == (_at(T0 + 5), 0)
    detail = store.session("s1", Scope.organisation("A"))
    assert detail is not None
    assert detail.session.ended_at is None


def test_sessions_page_between_organisations_seen_at_one_instant(store: SqlStore) -> None:
    store.write(batch_of([span(T0, 1.0, session_id="s1", org_id=org) for org in "ABC"]))
    store.write(batch_of([span(T0, 1.0, session_id="s1")]))
    seen = [s.org_id for s in _every_page(store, 1)]
    assert seen == ["C", "B", "A", None]
    for forged in ("not json", '["s1"]', '["s1", 3]', '["s1", "\\u0000"]'):
        with pytest.raises(QueryError, match="invalid cursor"):
            store.sessions(DAY, EVERYTHING, cursor=encode_cursor(T0, forged))
