"""Validation results and per-kind summaries for tools, agents and queues (error groups: see
test_error_groups)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.batch import Batch
from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import Severity, SpanKind, ValidationResult
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()
HOUR = TimeRange(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3600, UTC))


def _result(
    offset: float,
    passed: bool,
    severity: Severity = Severity.WARNING,
    target: str = "answer",
    observed: float | str | None = None,
    org_id: str | None = None,
    user_id: str | None = None,
) -> ValidationResult:
    return ValidationResult(
        T0 + offset, f"v{offset:g}", target, passed, observed, "expected", severity,
        user_id=user_id, org_id=org_id,
    )  # fmt: skip


def test_validations_filter_by_outcome_severity_target_and_scope(store: SqlStore) -> None:
    results = [
        _result(1, True, Severity.INFO, observed=3, org_id="o1", user_id="u1"),
        _result(2, False, Severity.ERROR, "answer.age", 212.5, org_id="o1", user_id="u1"),
        _result(3, False, Severity.CRITICAL, "answer.sign", "Leo", org_id="o2", user_id="u2"),
        _result(4, False, Severity.ERROR, "answer.sign", None, org_id="o2", user_id="u2"),
        _result(7200, False, Severity.ERROR),  # outside the hour
    ]
    store.write(Batch("api", "h", validations=results))

    def names(scope: Scope = EVERYTHING, **query: object) -> list[str]:
        page = store.validations(HOUR, scope, **query)  # type: ignore[arg-type]
        return [v.validator for v in page.items]

    assert names() == ["v4", "v3", "v2", "v1"]
    assert names(failed_only=True) == ["v4", "v3", "v2"]
    assert names(severity=Severity.ERROR) == ["v4", "v2"]
    assert names(failed_only=True, target="answer.sign") == ["v4", "v3"]
    assert names(Scope.organisation("o1")) == ["v2", "v1"]
    assert names(Scope.user("u2", "o2"), severity=Severity.CRITICAL) == ["v3"]
    assert names(Scope.user("u1", "o2")) == []
    observed = {v.validator: v.observed for v in store.validations(HOUR, EVERYTHING).items}
    assert observed == {"v1": 3.0, "v2": 212.5, "v3": "Leo", "v4": None}


def test_validations_page_with_a_cursor(store: SqlStore) -> None:
    store.write(Batch("api", "h", validations=[_result(i // 3, False) for i in range(20)]))
    first = store.validations(HOUR, EVERYTHING, limit=8)
    second = store.validations(HOUR, EVERYTHING, limit=8, cursor=first.next_cursor)
    third = store.validations(HOUR, EVERYTHING, limit=8, cursor=second.next_cursor)
    assert [len(p.items) for p in (first, second, third)] == [8, 8, 4]
    assert third.next_cursor is None
    times = [v.time for p in (first, second, third) for v in p.items]
    assert times == sorted(times, reverse=True)
    with pytest.raises(QueryError, match="limit"):
        store.validations(HOUR, EVERYTHING, limit=0)


@pytest.mark.parametrize("kind", [SpanKind.TOOL, SpanKind.AGENT, SpanKind.QUEUE])
def test_overview_summarises_tools_agents_and_queues_by_kind(
    store: SqlStore, kind: SpanKind
) -> None:
    others = [k for k in (SpanKind.TOOL, SpanKind.AGENT, SpanKind.QUEUE) if k is not kind]
    store.write(
        batch_of(
            [
                *(span(T0 + i, 0.1 * (i + 1), kind=kind, name="step") for i in range(4)),
                span(T0 + 9, 0.5, kind=kind, name="step", error=True),
                span(T0 + 10, 0.2, kind=kind, name="other", input_tokens=3, cost=0.1),
                *(span(T0 + 20, 0.1, kind=k, name="step") for k in others),
                span(T0 + 70, 0.2, kind=kind, name="step"),  # a second minute
            ]
        )
    )
    summaries = store.overview(HOUR, EVERYTHING, kind=kind)
    assert [(s.kind, s.name, s.count, s.errors) for s in summaries] == [
        (kind.value, "step", 6, 1),
        (kind.value, "other", 1, 0),
    ]
    assert summaries[1].input_tokens == 3
    assert summaries[1].cost == pytest.approx(0.1)
    assert summaries[0].p50 is not None
    everything = {(s.kind, s.name) for s in store.overview(HOUR, EVERYTHING)}
    assert everything == {(kind.value, "step"), (kind.value, "other")} | {
        (k.value, "step") for k in others
    }
