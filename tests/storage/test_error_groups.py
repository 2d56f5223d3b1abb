"""Error groups in both stores: fingerprints, counts per window, users, samples, statuses, the
new / spike / regressed flags, log patterns, grouping versions and retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.error_groups import ErrorFlag, ErrorStatus, build_error_deltas
from watchkeeper.model.events import LogLevel, LogRecord, Span, SpanKind, SpanStatus
from watchkeeper.model.ids import format_trace_id
from watchkeeper.model.query import RetainedTable, Scope, SpikeRule, TimeRange
from watchkeeper.recording.spans import ActiveSpan
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.schema import error_fingerprints
from watchkeeper.storage.sql_error_groups import write_error_groups
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
HOUR = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC))


def _at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def _window(start: float, end: float) -> TimeRange:
    return TimeRange(_at(start), _at(end))


def fetch_chart(duration_ms: int, user: int) -> None:
    raise TimeoutError(f"timeout after {duration_ms} ms for user {user}")


def charge_card(duration_ms: int, user: int) -> None:
    raise TimeoutError(f"timeout after {duration_ms} ms for user {user}")


def _failed_span(call: object, duration_ms: int, user: int, start: float, **fields: object) -> Span:
    """A span closed by a real exception raised through real functions, as instrumentation
    records it."""
    closed: list[Span] = []
    active = ActiveSpan(closed.append, SpanKind.INTEGRATION, "chart-service", None, None)
    with pytest.raises(TimeoutError), active:
        call(duration_ms, user)  # type: ignore[operator]
    (failed,) = closed
    failed.start = T0 + start
    for name, value in fields.items():
        setattr(failed, name, value)
    return failed


def test_the_same_stack_with_other_numbers_is_one_group_and_another_stack_is_another(
    store: SqlStore,
) -> None:
    spans = [
        _failed_span(fetch_chart, 3012, 42, 10, user_id="u42"),
        _failed_span(fetch_chart, 871, 7, 20, user_id="u7"),
        _failed_span(charge_card, 3012, 42, 30, user_id="u42"),
    ]
    assert spans[0].frames is not None
    assert spans[0].frames[-1] == (__name__, "fetch_chart")
    store.write(batch_of(spans))

    groups = store.error_groups(HOUR, EVERYTHING)
    assert [(g.culprit, g.count, g.users, g.basis) for g in groups] == [
        (f"{__name__}.fetch_chart", 2, 2, "stack"),
        (f"{__name__}.charge_card", 1, 1, "stack"),
    ]
    assert groups[0].title == "TimeoutError: timeout after 3012 ms for user 42"
    assert groups[0].source == "integration"


def test_without_a_stack_the_normalised_message_groups(store: SqlStore) -> None:
    messages = [
        "timeout after 3012 ms for user 42",
        "timeout after 871 ms for user 7",
        "timeout after 5 ms for user 9f1c2e4a-77b0-4c1e-9a0e-1234567890ab",
        "refused for ann@example.com at https://pay.example.com/v1/charges/ch_3NkQ2x",
        "refused for bob@example.org at https://pay.example.com/v1/charges/ch_9ZzA1b",
    ]
    spans = [
        span(T0 + i, error=True, error_type="TimeoutError", error_message=message)
        for i, message in enumerate(messages)
    ]
    store.write(batch_of(spans))
    groups = store.error_groups(HOUR, EVERYTHING)
    assert sorted((g.count, g.title) for g in groups) == [
        (1, f"TimeoutError: {messages[2]}"),  # a UUID is not a number
        (2, f"TimeoutError: {messages[3]}"),
        (2, f"TimeoutError: {messages[0]}"),
    ]
    assert {g.basis for g in groups} == {"message"}


def test_a_failure_propagating_through_nested_spans_counts_once(store: SqlStore) -> None:
    trace_id = 0x1234
    inner = span(
        T0 + 1,
        kind=SpanKind.INTEGRATION,
        name="openai",
        error=True,
        error_type="TimeoutError",
        error_message="slow",
        trace_id=trace_id,
    )
    outer = span(
        T0 + 1,
        kind=SpanKind.REQUEST,
        name="POST /chat",
        error=True,
        error_type="TimeoutError",
        error_message="slow",
        trace_id=trace_id,
    )
    other = span(T0 + 2, kind=SpanKind.REQUEST, name="POST /chat", error=True,
                 error_type="TimeoutError", error_message="slow")  # fmt: skip
    store.write(batch_of([inner, outer, other]))
    (group,) = store.error_groups(HOUR, EVERYTHING)
    assert (group.count, group.source) == (2, "integration")


def test_logs_with_exceptions_and_warning_patterns_group(store: SqlStore) -> None:
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "app/charts.py", line 10, in compute\n'
        "KeyError: 'ascendant 12'"
    )
    logs = [
        LogRecord(T0 + 1, 40, "app", "compute failed", exception_type="KeyError",
                  exception=traceback, frames=(("app.charts", "compute"),), trace_id=0xAA),
        LogRecord(T0 + 2, 40, "app", "compute failed again", exception_type="KeyError",
                  exception=traceback.replace("12", "99"), frames=(("app.charts", "compute"),)),
        LogRecord(T0 + 3, 30, "app.retry", "retrying in 3 s (attempt 1)"),
        LogRecord(T0 + 4, 30, "app.retry", "retrying in 9 s (attempt 2)"),
        LogRecord(T0 + 5, 30, "app.other", "retrying in 9 s (attempt 2)"),  # another logger
        LogRecord(T0 + 6, 20, "app.retry", "retrying in 1 s (attempt 1)"),  # INFO: no pattern
        LogRecord(T0 + 7, 40, "app", "disk nearly full", fingerprint="disk"),
        LogRecord(T0 + 8, 40, "app", "quota gone", fingerprint="disk"),
    ]  # fmt: skip
    store.write(batch_of([], logs=logs))
    found = store.error_groups(HOUR, EVERYTHING)
    assert sorted((g.source, g.title, g.count, g.basis) for g in found) == [
        ("log", "Error: disk nearly full", 2, "explicit"),
        ("log", "KeyError: 'ascendant 12'", 2, "stack"),
        ("pattern", "retrying in <num> s (attempt <num>)", 1, "template"),
        ("pattern", "retrying in <num> s (attempt <num>)", 2, "template"),
    ]
    groups = {(g.source, g.title): g for g in found}
    keyerror = groups["log", "KeyError: 'ascendant 12'"]
    assert keyerror.culprit == "app.charts.compute"
    detail = store.error_group(keyerror.id, HOUR, EVERYTHING)
    assert detail is not None
    assert detail.frames == [("app.charts", "compute")]
    assert [s.message for s in detail.samples] == ["compute failed"]  # one per minute
    assert detail.samples[0].detail == traceback
    assert detail.samples[0].trace_id == format_trace_id(0xAA)


def test_counts_users_first_and_last_seen_and_series_over_a_window(store: SqlStore) -> None:
    def failure(offset: float, user: str, org: str) -> Span:
        return span(T0 + offset, error=True, error_type="ValueError", error_message="bad input",
                    user_id=user, org_id=org)  # fmt: skip

    store.write(batch_of([failure(10, "u1", "o1"), failure(70, "u2", "o1")]))
    store.write(batch_of([failure(130, "u1", "o2"), failure(4000, "u3", "o1")]))
    (group,) = store.error_groups(HOUR, EVERYTHING)
    assert (group.count, group.total, group.users) == (3, 4, 3)
    assert (group.first_seen, group.last_seen) == (_at(10.1), _at(4000.1))
    assert sum(group.series) == 3
    assert len(group.series) == 24
    assert group.status == "new"
    assert group.sample_message == "bad input"
    (org2,) = store.error_groups(HOUR, Scope.organisation("o2"))
    assert org2.count == 1
    assert store.error_groups(HOUR, Scope.organisation("o3")) == []
    assert [g.count for g in store.error_groups(HOUR, Scope.user("u2"))] == [3]
    assert store.error_groups(HOUR, Scope.user("nobody")) == []
    assert store.error_group(group.id, HOUR, Scope.organisation("o3")) is None
    # Four samples, one per minute, newest first.
    detail = store.error_group(group.id, _window(0, 5000), EVERYTHING)
    assert detail is not None
    assert [s.user_id for s in detail.samples] == ["u3", "u1", "u2", "u1"]


def test_statuses_the_regressed_flag_and_the_new_flag(store: SqlStore) -> None:
    def failure(offset: float) -> Span:
        return span(T0 + offset, error=True, error_type="KeyError", error_message="'sign'")

    store.write(batch_of([failure(10)]))
    (group,) = store.error_groups(HOUR, EVERYTHING)
    assert (group.status, group.flags) == ("new", ["new"])
    assert store.error_groups(_window(20, 3600), EVERYTHING) == []  # none in that window

    assert store.set_error_status(group.id, ErrorStatus.RESOLVED, T0 + 100)
    assert not store.set_error_status("0" * 32, ErrorStatus.RESOLVED, T0 + 100)
    store.write(batch_of([failure(50)]))  # late news from before it was resolved
    (late,) = store.error_groups(HOUR, EVERYTHING)
    assert (late.status, late.flags, late.count) == ("resolved", ["new"], 2)

    store.write(batch_of([failure(200)]))  # back after being resolved
    later = _window(150, 3600)
    (back,) = store.error_groups(later, EVERYTHING)
    assert (back.status, back.flags, back.count) == ("regressed", ["regressed"], 1)
    assert [g.id for g in store.error_groups(later, EVERYTHING, flag=ErrorFlag.REGRESSED)] == [
        group.id
    ]
    assert store.error_groups(later, EVERYTHING, flag=ErrorFlag.NEW) == []
    assert [g.id for g in store.error_groups(HOUR, EVERYTHING, flag=ErrorFlag.NEW)] == [group.id]
    assert store.error_groups(HOUR, EVERYTHING, status=ErrorStatus.IGNORED) == []

    store.set_error_status(group.id, ErrorStatus.IGNORED, T0 + 300)
    store.write(batch_of([failure(400)]))  # an ignored group stays ignored
    (ignored,) = store.error_groups(HOUR, EVERYTHING, status=ErrorStatus.IGNORED)
    assert (ignored.flags, ignored.count) == ([], 4)  # ignored: counted, never flagged
    assert store.error_groups(HOUR, EVERYTHING, flag=ErrorFlag.NEW) == []


def test_a_new_group_becomes_ongoing_after_a_day(store: SqlStore) -> None:
    first = span(T0, error=True, error_type="E", error_message="m")
    store.write(batch_of([first]))
    store.write(batch_of([replace_start(first, T0 + 86_500)]))
    (group,) = store.error_groups(_window(0, 90_000), EVERYTHING)
    assert group.status == "ongoing"


def replace_start(original: Span, start: float) -> Span:
    return span(start, error=True, error_type=original.error_type,
                error_message=original.error_message)  # fmt: skip


def test_a_rate_well_over_its_baseline_is_a_spike(store: SqlStore) -> None:
    day = 86_400.0

    def failure(offset: float, message: str) -> Span:
        return span(T0 + offset, error=True, error_type="E", error_message=message)

    # Both groups: one error an hour for a day. Then one gets 30 in the last ten minutes.
    steady = [failure(hour * 3600 + 5, "steady") for hour in range(24)]
    spiking = [failure(hour * 3600 + 5, "spiking") for hour in range(24)]
    burst = [failure(day + 300 + i, "spiking") for i in range(30)]
    store.write(batch_of(steady + spiking + burst + [failure(day + 400, "steady")]))
    window = _window(day, day + 900)
    flags = {g.title: g.flags for g in store.error_groups(window, EVERYTHING)}
    assert flags == {"E: spiking": ["spike"], "E: steady": []}
    spikes = store.error_groups(window, EVERYTHING, flag=ErrorFlag.SPIKE)
    assert [g.title for g in spikes] == ["E: spiking"]
    # A stricter rule sees no spike in the same figures.
    strict = SpikeRule(min_count=31)
    assert store.error_groups(window, EVERYTHING, flag=ErrorFlag.SPIKE, spike=strict) == []


def test_a_later_grouping_version_keeps_the_groups_of_the_earlier_one(store: SqlStore) -> None:
    old = span(T0 + 1, error=True, error_type="E", error_message="renamed later")
    store.write(batch_of([old]))
    (group,) = store.error_groups(HOUR, EVERYTHING)

    # What a version 2 would compute: a new hash, with version 1's hash as its previous one.
    newer = span(T0 + 100, error=True, error_type="E", error_message="renamed later")
    (delta,) = build_error_deltas([newer], []).values()
    delta.fingerprint = replace(
        delta.fingerprint, hash="f" * 32, version=2, previous=(delta.fingerprint.hash,)
    )
    with write_transaction(store.engine) as connection:
        write_error_groups(connection, store.dialect, [delta])

    (same,) = store.error_groups(HOUR, EVERYTHING)
    assert (same.id, same.count, same.grouping_version) == (group.id, 2, 1)
    detail = store.error_group(group.id, HOUR, EVERYTHING)
    assert detail is not None
    assert detail.fingerprints == sorted([group.id, "f" * 32])


def test_retention_removes_error_rows_by_age(store: SqlStore) -> None:
    store.write(batch_of([span(T0 + 10, error=True, error_type="E", error_message="old",
                               user_id="u1")]))  # fmt: skip
    store.write(batch_of([span(T0 + 9000, error=True, error_type="E", error_message="new",
                               user_id="u2")]))  # fmt: skip
    before = _at(5000)
    for table in (
        RetainedTable.ERROR_GROUPS,
        RetainedTable.ERROR_COUNTS,
        RetainedTable.ERROR_USERS,
        RetainedTable.ERROR_SAMPLES,
    ):
        assert store.count(table) == 2
        assert store.delete_expired(table, before, 100) == 1
        assert store.count(table) == 1
    (group,) = store.error_groups(_window(0, 10_000), EVERYTHING)
    assert group.title == "E: new"
    # The deleted group's hashes went with it; the kept group's stay.
    with store.engine.connect() as connection:
        aliased = connection.execute(select(error_fingerprints.c.group_id)).scalars().all()
    assert aliased == [group.id]


def test_only_failed_spans_and_warnings_are_grouped() -> None:
    ok = span(T0, kind=SpanKind.REQUEST)
    cancelled = Span(SpanKind.REQUEST, "GET /", T0, 0.1, 1, 2, status=SpanStatus.CANCELLED)
    info = LogRecord(T0, int(LogLevel.INFO), "app", "all fine")
    assert build_error_deltas([ok, cancelled], [info]) == {}
