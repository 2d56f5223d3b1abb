"""Overview, series and usage from rollups: accurate, edge-exact, and scoped."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.support.stores import T0, batch_of, span
from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import Span, SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import Dimension, Level
from watchkeeper.storage.sql_store import SqlStore

EVERYTHING = Scope.everything()


def _range(start: float, end: float) -> TimeRange:
    return TimeRange(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))


def _traffic(seed: int, hours: float = 4) -> list[Span]:
    """Spans every few seconds over several hours, across names, orgs, users and models."""
    rng = random.Random(seed)
    spans, t = [], T0
    while t < T0 + hours * 3600:
        t += rng.uniform(0.5, 9)
        tokens = rng.random() < 0.5
        spans.append(
            span(
                t,
                rng.lognormvariate(-2, 0.8),
                kind=rng.choice([SpanKind.REQUEST, SpanKind.INTEGRATION]),
                name=rng.choice(["a", "b", "c"]),
                error=rng.random() < 0.1,
                org_id=rng.choice(["o1", "o2", None]),
                user_id=rng.choice(["u1", "u2", "u3", None]),
                model=rng.choice(["m1", "m2"]) if tokens else None,
                input_tokens=rng.randint(1, 500) if tokens else None,
                output_tokens=rng.randint(1, 200) if tokens else None,
                cost=rng.choice([None, round(rng.random() / 100, 6)]) if tokens else None,
            )
        )
    return spans


def _write_in_batches(store: SqlStore, spans: list[Span], size: int = 250) -> None:
    for i in range(0, len(spans), size):
        store.write(batch_of(spans[i : i + size]))


@pytest.fixture
def traffic(store: SqlStore) -> list[Span]:
    spans = _traffic(seed=7)
    _write_in_batches(store, spans)
    return spans


def _counts(spans: list[Span]) -> Counter[tuple[str, str]]:
    return Counter((s.kind.value, s.name) for s in spans)


def test_percentiles_stay_within_two_percent_across_batches_minutes_and_hours(
    store: SqlStore,
) -> None:
    rng = np.random.default_rng(3)
    starts = T0 + np.sort(rng.uniform(0, 3 * 3600, 20_000))
    durations = rng.lognormal(-1.5, 1.0, starts.size)
    spans = [span(float(s), float(d), name="llm") for s, d in zip(starts, durations, strict=True)]
    _write_in_batches(store, spans, size=700)

    # Unaligned on both ends: hour rows in the middle, minute rows at the edges.
    (summary,) = store.overview(_range(T0 + 600, T0 + 3 * 3600 - 1200), EVERYTHING)
    chosen = durations[(starts >= T0 + 600) & (starts < T0 + 3 * 3600 - 1200)]
    assert summary.count == chosen.size
    for got, q in ((summary.p50, 0.5), (summary.p95, 0.95), (summary.p99, 0.99)):
        exact = float(np.quantile(chosen, q))
        assert got == pytest.approx(exact, rel=0.02), q


def test_hour_rows_and_minute_edges_count_exactly_what_raw_spans_count(
    store: SqlStore, traffic: list[Span]
) -> None:
    for start, end in [
        (T0 + 17 * 60, T0 + 2 * 3600 + 43 * 60),  # partial hours on both sides
        (T0 + 3600, T0 + 3 * 3600),  # whole hours only
        (T0 + 61 * 60, T0 + 62 * 60),  # one minute inside one hour
        (T0 + 59 * 60, T0 + 61 * 60),  # two minutes straddling an hour
    ]:
        inside = [s for s in traffic if start <= s.start < end]
        summaries = store.overview(_range(start, end), EVERYTHING)
        assert {(s.kind, s.name): s.count for s in summaries} == _counts(inside)
        assert sum(s.errors for s in summaries) == sum(s.is_error for s in inside)
        assert sum(s.input_tokens for s in summaries) == sum(s.input_tokens or 0 for s in inside)
        assert sum(s.cost_unknown for s in summaries) == sum(s.cost_unknown for s in inside)
        assert sum(s.cost for s in summaries) == pytest.approx(sum(s.cost or 0 for s in inside))
        counts = [s.count for s in summaries]
        assert counts == sorted(counts, reverse=True)


def test_rows_count_when_their_bucket_starts_inside_the_range(
    store: SqlStore, traffic: list[Span]
) -> None:
    # Unaligned to the minute: the minute holding the start is left out, the one holding the
    # end is counted whole.
    start, end = T0 + 17 * 60 + 30, T0 + 2 * 3600 + 10
    inside = [s for s in traffic if T0 + 18 * 60 <= s.start < T0 + 2 * 3600 + 60]
    summaries = store.overview(_range(start, end), EVERYTHING)
    assert sum(s.count for s in summaries) == len(inside)


def test_overview_is_scoped_to_an_organisation_or_a_user(
    store: SqlStore, traffic: list[Span]
) -> None:
    start, end = T0 + 17 * 60, T0 + 3 * 3600 + 5 * 60
    time_range = _range(start, end)
    inside = [s for s in traffic if start <= s.start < end]

    org = store.overview(time_range, Scope.organisation("o1"))
    assert {(s.kind, s.name): s.count for s in org} == _counts(
        [s for s in inside if s.org_id == "o1"]
    )
    user = store.overview(time_range, Scope.user("u2"))
    assert {(s.kind, s.name): s.count for s in user} == _counts(
        [s for s in inside if s.user_id == "u2"]
    )
    user_in_org = store.overview(time_range, Scope.user("u2", org_id="o2"))
    assert {(s.kind, s.name): s.count for s in user_in_org} == _counts(
        [s for s in inside if s.user_id == "u2" and s.org_id == "o2"]
    )
    assert all(s.p50 is not None for s in user)
    integration = store.overview(time_range, EVERYTHING, kind=SpanKind.INTEGRATION)
    assert {s.kind for s in integration} == {"integration"}


@pytest.mark.parametrize("step", list(Level))
@pytest.mark.parametrize("scope", [EVERYTHING, Scope.organisation("o1"), Scope.user("u1")])
def test_series_has_one_point_per_bucket_with_data(
    store: SqlStore, traffic: list[Span], step: Level, scope: Scope
) -> None:
    start, end = T0 + 3600, T0 + 2 * 3600
    points = store.series(_range(start, end), scope, step, kind=SpanKind.REQUEST, name="a")
    expected = Counter(
        int(s.start) // step.seconds * step.seconds
        for s in traffic
        if start <= s.start < end
        and (s.kind, s.name) == (SpanKind.REQUEST, "a")
        and (scope.org_id is None or s.org_id == scope.org_id)
        and (scope.user_id is None or s.user_id == scope.user_id)
    )
    assert [(int(p.bucket.timestamp()), p.count) for p in points] == sorted(expected.items())
    assert all(p.p95 is not None for p in points)


def _usage(spans: list[Span], value_of: str) -> dict[str, tuple[int, int, float]]:
    totals: dict[str, tuple[int, int, float]] = {}
    for s in spans:
        value = getattr(s, value_of)
        if value is None:
            continue
        count, tokens, cost = totals.get(value, (0, 0, 0.0))
        totals[value] = (count + 1, tokens + (s.input_tokens or 0), cost + (s.cost or 0))
    return totals


@pytest.mark.parametrize(
    ("dimension", "attribute"),
    [(Dimension.USER, "user_id"), (Dimension.ORG, "org_id"), (Dimension.MODEL, "model")],
)
@pytest.mark.parametrize("scope", [EVERYTHING, Scope.organisation("o2"), Scope.user("u3")])
def test_usage_per_user_organisation_and_model(
    store: SqlStore, traffic: list[Span], dimension: Dimension, attribute: str, scope: Scope
) -> None:
    # Whole hours, so per-user hour rows and raw spans cover the same spans.
    start, end = T0 + 3600, T0 + 3 * 3600
    inside = [
        s
        for s in traffic
        if start <= s.start < end
        and (scope.org_id is None or s.org_id == scope.org_id)
        and (scope.user_id is None or s.user_id == scope.user_id)
    ]
    rows = store.usage(_range(start, end), scope, dimension)
    got = {row.value: (row.count, row.input_tokens, row.cost) for row in rows}
    expected = _usage(inside, attribute)
    assert got.keys() == expected.keys()
    for value, (count, tokens, cost) in expected.items():
        assert got[value][:2] == (count, tokens)
        assert got[value][2] == pytest.approx(cost)
    order = [(row.cost, row.count) for row in rows]
    assert order == sorted(order, reverse=True)
    assert len(store.usage(_range(start, end), scope, dimension, limit=1)) == min(1, len(rows))


def test_usage_needs_a_dimension(store: SqlStore) -> None:
    with pytest.raises(QueryError, match="dimension"):
        store.usage(_range(T0, T0 + 60), EVERYTHING, Dimension.NONE)


def test_kind_totals_merge_sketches_across_names(store: SqlStore) -> None:
    rng = random.Random(11)
    values_by_name = {
        name: [rng.lognormvariate(-2, 1) for _ in range(3_000)] for name in ("/a", "/b", "/c")
    }
    batch_spans = [
        span(T0 + index * 0.5, value, name=name)
        for name, values in values_by_name.items()
        for index, value in enumerate(values)
    ]
    store.write(batch_of(batch_spans))
    window = TimeRange(
        datetime.fromtimestamp(T0 - 60, UTC), datetime.fromtimestamp(T0 + 3 * 3600, UTC)
    )
    (total,) = store.kind_totals(window, Scope.everything())
    every = sorted(value for values in values_by_name.values() for value in values)
    assert (total.kind, total.name, total.count) == ("request", "", 9_000)
    for estimate, q in ((total.p50, 0.5), (total.p95, 0.95), (total.p99, 0.99)):
        exact = every[int(q * (len(every) - 1))]
        assert estimate is not None
        assert abs(estimate - exact) / exact <= 0.02
