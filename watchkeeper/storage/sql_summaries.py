"""Summaries (overview, series, usage) as SQLAlchemy Core queries over rollups or raw spans.

Summaries come from rollups so their cost grows with minutes and names, never with events:
a range reads hour rows for the whole hours inside it and minute rows for the partial hours at
its edges, counting a row when its bucket *starts* inside the range. A user-scoped summary has
no rollups to read (users get only hourly sums, without latency) and is computed from raw spans.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    desc,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from watchkeeper.model.errors import QueryError
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import HOUR, Dimension, Level, RollupDelta
from watchkeeper.model.sketch import LatencySketch
from watchkeeper.model.stored import NameSummary, RequestUsage, SeriesPoint, UsageRow
from watchkeeper.storage.schema import rollups, spans
from watchkeeper.storage.sql_queries import MAX_PAGE, check_limit, in_range, scoped

_ERROR = SpanStatus.ERROR.value
_MINUTE_ROWS = rollups.c.level == Level.MINUTE.value
_HOUR_ROWS = rollups.c.level == Level.HOUR.value


def _ceil_to(seconds: float, step: int) -> int:
    return math.ceil(seconds / step) * step


def _edge_window(time_range: TimeRange) -> ColumnElement[bool]:
    """Hour rows for whole hours in the range, minute rows for the partial hours at its edges."""
    # Integer bounds: comparing the BIGINT bucket with a float would defeat PostgreSQL's index.
    start, end = _ceil_to(time_range.start_ts, 1), _ceil_to(time_range.end_ts, 1)
    first_hour, last_hour = _ceil_to(start, HOUR), end // HOUR * HOUR
    bucket = rollups.c.bucket
    if first_hour >= last_hour:
        return and_(_MINUTE_ROWS, bucket >= start, bucket < end)
    return or_(
        and_(_HOUR_ROWS, bucket >= first_hour, bucket < last_hour),
        and_(_MINUTE_ROWS, bucket >= start, bucket < first_hour),
        and_(_MINUTE_ROWS, bucket >= last_hour, bucket < end),
    )


def _level_window(time_range: TimeRange, level: Level) -> ColumnElement[bool]:
    start, end = _ceil_to(time_range.start_ts, 1), _ceil_to(time_range.end_ts, 1)
    return and_(rollups.c.level == level.value, rollups.c.bucket >= start, rollups.c.bucket < end)


def _rollup_scope(scope: Scope) -> ColumnElement[bool]:
    """Rows for an unscoped or organisation-scoped query (user scopes read raw spans)."""
    if scope.org_id is None:
        return and_(rollups.c.dimension == Dimension.NONE.value, rollups.c.value == "")
    return and_(rollups.c.dimension == Dimension.ORG.value, rollups.c.value == scope.org_id)


_ROLLUP_SUMS = (
    rollups.c.count,
    rollups.c.errors,
    rollups.c.input_tokens,
    rollups.c.output_tokens,
    rollups.c.cost,
    rollups.c.cost_unknown,
    rollups.c.sketch,
)
_RAW_FIELDS = (
    spans.c.status,
    spans.c.duration,
    spans.c.input_tokens,
    spans.c.output_tokens,
    spans.c.cost,
)


def _from_rollups(rows: Iterable[Sequence[Any]]) -> dict[Any, RollupDelta]:
    """Sum rollup rows whose leading columns are the group key, followed by ``_ROLLUP_SUMS``."""
    deltas: dict[Any, RollupDelta] = {}
    for row in rows:
        *key, count, errors, input_tokens, output_tokens, cost, cost_unknown, sketch = row
        delta = deltas.setdefault(tuple(key), RollupDelta(sketch=LatencySketch()))
        delta.count += count
        delta.errors += errors
        delta.input_tokens += input_tokens
        delta.output_tokens += output_tokens
        delta.cost += cost
        delta.cost_unknown += cost_unknown
        if sketch is not None and delta.sketch is not None:
            delta.sketch.merge_bytes(bytes(sketch))
    return deltas


def _from_spans(rows: Iterable[Sequence[Any]]) -> dict[Any, RollupDelta]:
    """Sum raw span rows whose leading columns are the group key, followed by ``_RAW_FIELDS``.

    Token and cost rules match :meth:`RollupDelta.add_usage`, so raw and rolled-up answers agree.
    """
    deltas: dict[Any, RollupDelta] = {}
    durations: dict[Any, list[float]] = defaultdict(list)
    for row in rows:
        *key_columns, status, duration, input_tokens, output_tokens, cost = row
        key = tuple(key_columns)
        delta = deltas.setdefault(key, RollupDelta())
        delta.count += 1
        delta.errors += status == _ERROR
        delta.duration_sum += duration
        durations[key].append(duration)
        delta.input_tokens += input_tokens or 0
        delta.output_tokens += output_tokens or 0
        if cost is not None:
            delta.cost += cost
        elif input_tokens or output_tokens:
            delta.cost_unknown += 1
    for key, values in durations.items():
        deltas[key].sketch = LatencySketch.of(values)
    return deltas


def _quantiles(delta: RollupDelta) -> tuple[float | None, float | None, float | None]:
    sketch = delta.sketch
    if sketch is None:
        return None, None, None
    return sketch.quantile(0.5), sketch.quantile(0.95), sketch.quantile(0.99)


def _name_deltas(
    connection: Connection, time_range: TimeRange, scope: Scope, kind: SpanKind | None
) -> dict[Any, RollupDelta]:
    if scope.user_id is None:
        query = select(rollups.c.kind, rollups.c.name, *_ROLLUP_SUMS).where(
            _rollup_scope(scope), _edge_window(time_range)
        )
        if kind is not None:
            query = query.where(rollups.c.kind == kind.value)
        return _from_rollups(connection.execute(query))
    raw = select(spans.c.kind, spans.c.name, *_RAW_FIELDS).where(
        in_range(spans.c.start_time, time_range.start_ts, time_range.end_ts),
        *scoped(spans, scope),
    )
    if kind is not None:
        raw = raw.where(spans.c.kind == kind.value)
    return _from_spans(connection.execute(raw))


def _summaries(deltas: dict[Any, RollupDelta]) -> list[NameSummary]:
    summaries = [
        NameSummary(
            kind,
            name,
            delta.count,
            delta.errors,
            *_quantiles(delta),
            delta.input_tokens,
            delta.output_tokens,
            delta.cost,
            delta.cost_unknown,
        )
        for (kind, name), delta in deltas.items()
    ]
    summaries.sort(key=lambda summary: (-summary.count, summary.kind, summary.name))
    return summaries


def overview(
    connection: Connection, time_range: TimeRange, scope: Scope, kind: SpanKind | None
) -> list[NameSummary]:
    return _summaries(_name_deltas(connection, time_range, scope, kind))


def kind_totals(connection: Connection, time_range: TimeRange, scope: Scope) -> list[NameSummary]:
    """One summary per kind over all its names (name ``""``), sketches merged, not averaged."""
    totals: dict[Any, RollupDelta] = {}
    for (kind, _name), delta in _name_deltas(connection, time_range, scope, None).items():
        total = totals.get((kind, ""))
        if total is None:
            totals[(kind, "")] = delta
        else:
            total.merge(delta)
    return _summaries(totals)


def series(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    step: Level,
    kind: SpanKind | None,
    name: str | None,
) -> list[SeriesPoint]:
    """One point per ``step`` bucket that starts inside the range and holds data."""
    if scope.user_id is None:
        query = select(rollups.c.bucket, *_ROLLUP_SUMS).where(
            _rollup_scope(scope), _level_window(time_range, step)
        )
        kind_column, name_column = rollups.c.kind, rollups.c.name
    else:
        # Whole buckets, as the rollups would give: from the first bucket start in the range.
        seconds = step.seconds
        start = _ceil_to(time_range.start_ts, seconds)
        end = _ceil_to(time_range.end_ts, seconds)
        query = select(spans.c.start_time, *_RAW_FIELDS).where(
            in_range(spans.c.start_time, start, end), *scoped(spans, scope)
        )
        kind_column, name_column = spans.c.kind, spans.c.name
    if kind is not None:
        query = query.where(kind_column == kind.value)
    if name is not None:
        query = query.where(name_column == name)
    rows = connection.execute(query)
    if scope.user_id is None:
        deltas = _from_rollups(rows)
    else:
        deltas = _from_spans((start // step.seconds * step.seconds, *rest) for start, *rest in rows)
    return [
        SeriesPoint(
            datetime.fromtimestamp(int(bucket), UTC),
            delta.count,
            delta.errors,
            *_quantiles(delta),
            delta.input_tokens,
            delta.output_tokens,
            delta.cost,
        )
        for (bucket,), delta in sorted(deltas.items())
    ]


_USAGE_COLUMNS = {
    Dimension.USER: spans.c.user_id,
    Dimension.ORG: spans.c.org_id,
    Dimension.MODEL: spans.c.model,
}


def usage(
    connection: Connection, time_range: TimeRange, scope: Scope, dimension: Dimension, limit: int
) -> list[UsageRow]:
    """Totals per user, organisation or model, largest cost first.

    Rollups have no user-by-organisation breakdown, so any scope narrower than the dimension
    itself (an organisation's users or models, one user's anything) sums raw spans instead.
    """
    check_limit(limit, MAX_PAGE)
    if dimension is Dimension.NONE:
        raise QueryError("usage needs a dimension: user, org or model")
    if scope.user_id is None and (scope.org_id is None or dimension is Dimension.ORG):
        query = _usage_from_rollups(time_range, scope, dimension)
    else:
        query = _usage_from_spans(time_range, scope, _USAGE_COLUMNS[dimension])
    return [
        UsageRow(
            str(value),
            int(count),
            int(errors),
            int(tokens_in),
            int(tokens_out),
            float(cost),
            int(unknown),
        )
        for value, count, errors, tokens_in, tokens_out, cost, unknown in connection.execute(
            query.limit(limit)
        )
    ]


def _usage_from_rollups(time_range: TimeRange, scope: Scope, dimension: Dimension) -> Select[Any]:
    # Per-user rows exist only per hour, so users are summed over the hours starting in range.
    if dimension is Dimension.USER:
        window = _level_window(time_range, Level.HOUR)
    else:
        window = _edge_window(time_range)
    count, cost = func.sum(rollups.c.count), func.sum(rollups.c.cost)
    query = (
        select(
            rollups.c.value,
            count,
            func.sum(rollups.c.errors),
            func.sum(rollups.c.input_tokens),
            func.sum(rollups.c.output_tokens),
            cost,
            func.sum(rollups.c.cost_unknown),
        )
        .where(rollups.c.dimension == dimension.value, window)
        .group_by(rollups.c.value)
        .order_by(desc(cost), desc(count), rollups.c.value)
    )
    if scope.org_id is not None:
        query = query.where(rollups.c.value == scope.org_id)
    return query


def _usage_from_spans(time_range: TimeRange, scope: Scope, column: Any) -> Select[Any]:
    input_tokens = func.coalesce(spans.c.input_tokens, 0)
    output_tokens = func.coalesce(spans.c.output_tokens, 0)
    unknown = and_(spans.c.cost.is_(None), or_(input_tokens != 0, output_tokens != 0))
    count, cost = func.count(), func.coalesce(func.sum(spans.c.cost), 0.0)
    return (
        select(
            column,
            count,
            func.sum(case((spans.c.status == _ERROR, 1), else_=0)),
            func.sum(input_tokens),
            func.sum(output_tokens),
            cost,
            func.sum(case((unknown, 1), else_=0)),
        )
        .where(
            in_range(spans.c.start_time, time_range.start_ts, time_range.end_ts),
            column.is_not(None),
            *scoped(spans, scope),
        )
        .group_by(column)
        .order_by(desc(cost), desc(count), column)
    )


MAX_NESTING = 64
"""How far up a trace an integration span's request is looked for (a guard against bad data)."""
_REQUEST = SpanKind.REQUEST.value


def request_usage(
    connection: Connection,
    time_range: TimeRange,
    scope: Scope,
    step: Level,
    name: str | None,
) -> list[RequestUsage]:
    """Each usage-carrying integration span walks up its trace to the nearest request span.

    Requests are counted like :func:`series` counts them (whole ``step`` buckets starting inside
    the range), and the scope applies to the requests. Walking up from the few spans that carry
    usage reads far fewer rows than walking down from every request.
    """
    seconds = step.seconds
    start = _ceil_to(time_range.start_ts, seconds)
    end = _ceil_to(time_range.end_ts, seconds)
    # An AI call starts after its request, so calls before the first bucket cannot count.
    anchor = select(
        spans.c.trace_id.label("trace_id"),
        spans.c.parent_id.label("ancestor"),
        spans.c.input_tokens.label("input_tokens"),
        spans.c.output_tokens.label("output_tokens"),
        spans.c.cost.label("cost"),
        literal(0).label("depth"),
    ).where(
        spans.c.kind == SpanKind.INTEGRATION.value,
        spans.c.start_time >= start,
        spans.c.parent_id.is_not(None),
        or_(
            spans.c.cost.is_not(None),
            spans.c.input_tokens.is_not(None),
            spans.c.output_tokens.is_not(None),
        ),
    )
    chain = anchor.cte("usage_chain", recursive=True)
    parent = spans.alias("parent")
    chain = chain.union_all(
        select(
            chain.c.trace_id,
            parent.c.parent_id,
            chain.c.input_tokens,
            chain.c.output_tokens,
            chain.c.cost,
            chain.c.depth + 1,
        )
        .join(
            parent,
            and_(parent.c.trace_id == chain.c.trace_id, parent.c.span_id == chain.c.ancestor),
        )
        .where(
            parent.c.kind != _REQUEST,
            parent.c.parent_id.is_not(None),
            chain.c.depth < MAX_NESTING,
        )
    )
    request = spans.alias("request")
    query = (
        select(
            request.c.name,
            request.c.start_time,
            chain.c.input_tokens,
            chain.c.output_tokens,
            chain.c.cost,
        )
        .select_from(chain)
        .join(
            request,
            and_(request.c.trace_id == chain.c.trace_id, request.c.span_id == chain.c.ancestor),
        )
        .where(
            request.c.kind == _REQUEST,
            in_range(request.c.start_time, start, end),
            *scoped(request, scope),
        )
    )
    if name is not None:
        query = query.where(request.c.name == name)
    totals: dict[tuple[str, int], list[float]] = {}
    for route, started, input_tokens, output_tokens, cost in connection.execute(query):
        bucket = int(started // seconds * seconds)
        sums = totals.setdefault((route, bucket), [0, 0, 0.0, 0])
        sums[0] += input_tokens or 0
        sums[1] += output_tokens or 0
        if cost is not None:
            sums[2] += cost
        elif input_tokens or output_tokens:
            sums[3] += 1
    return [
        RequestUsage(
            route,
            datetime.fromtimestamp(bucket, UTC),
            int(sums[0]),
            int(sums[1]),
            float(sums[2]),
            int(sums[3]),
        )
        for (route, bucket), sums in sorted(totals.items(), key=lambda item: item[0][::-1])
    ]
