"""Overview, routes, per-kind summaries (tools, agents, queues) and chart series.

Rates are taken over the time the range actually holds data: from the start of the first minute
in it with any span recorded to the range's end (or now, if that is earlier). A one-hour range
over an app that started ten minutes ago is ten minutes of traffic, not an hour of it.

A request's usage (tokens and cost) is that of the AI calls under it: routes and the request
series carry the sums of their integration spans, as :meth:`Store.request_usage` attributes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import current_scope, text_query, time_range
from watchkeeper.api.schemas import Headline, NameFigures, Overview
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import Level
from watchkeeper.model.store import Store
from watchkeeper.model.stored import NameSummary, RequestUsage, SeriesPoint

ACTIVE_SESSION_WINDOW = timedelta(minutes=5)


def covered_from(store: Store, window: TimeRange, scope: Scope) -> datetime | None:
    """The start of the first minute in ``window`` holding any span, or ``None`` if none does.

    Read from the rollups: the first bucket of the chart's step, refined to its first minute
    when the step is an hour (and minute rows are still kept for it).
    """
    step = chart_step(window)
    points = store.series(window, scope, step)
    if not points:
        return None
    first = points[0].bucket
    if step is Level.HOUR:
        hour = TimeRange(max(first, window.start), min(first + timedelta(hours=1), window.end))
        minutes = store.series(hour, scope, Level.MINUTE)
        if minutes:
            first = minutes[0].bucket
    return max(first, window.start)


def headline(store: Store, window: TimeRange, scope: Scope) -> Headline:
    """Request figures over ``window``; per-second and per-hour rates over its covered part."""
    totals = {total.kind: total for total in store.kind_totals(window, scope)}
    requests = totals.get(SpanKind.REQUEST.value)
    count = requests.count if requests else 0
    errors = requests.errors if requests else 0
    cost = sum(total.cost for total in totals.values())
    start = covered_from(store, window, scope)
    end = min(window.end, datetime.now(UTC))
    covered = max((end - start).total_seconds(), 1.0) if start is not None and totals else 0.0
    active = store.sessions(TimeRange.last(ACTIVE_SESSION_WINDOW, window.end), scope, limit=1000)
    return Headline(
        requests=count,
        requests_per_second=count / covered if covered else 0.0,
        errors=errors,
        error_rate=errors / count if count else 0.0,
        p50=requests.p50 if requests else None,
        p95=requests.p95 if requests else None,
        p99=requests.p99 if requests else None,
        active_sessions=sum(1 for session in active.items if not session.ended),
        cost=cost,
        cost_per_hour=cost / (covered / 3600) if covered else 0.0,
        cost_unknown_calls=sum(total.cost_unknown for total in totals.values()),
        covered_from=start if covered else None,
        covered_seconds=covered,
    )


def with_request_usage(
    summaries: Iterable[NameSummary], usage: Iterable[RequestUsage]
) -> list[NameSummary]:
    """Request summaries carrying the usage of the AI calls under them."""
    by_name: dict[str, list[int | float]] = {}
    for row in usage:
        sums = by_name.setdefault(row.name, [0, 0, 0.0, 0])
        sums[0] += row.input_tokens
        sums[1] += row.output_tokens
        sums[2] += row.cost
        sums[3] += row.cost_unknown
    result = []
    for summary in summaries:
        if summary.kind != SpanKind.REQUEST.value:
            result.append(summary)
            continue
        tokens_in, tokens_out, cost, unknown = by_name.get(summary.name, [0, 0, 0.0, 0])
        result.append(
            replace(
                summary,
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
                cost=float(cost),
                cost_unknown=int(unknown),
            )
        )
    return result


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["overview"])

    @api.get("/overview", response_model=Overview, summary="Headline figures and every name")
    def overview(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> Overview:
        summaries = context.store.overview(window, scope)
        if any(summary.kind == SpanKind.REQUEST.value for summary in summaries):
            usage = context.store.request_usage(window, scope, Level.MINUTE)
            summaries = with_request_usage(summaries, usage)
        by_kind: dict[str, list[NameFigures]] = {}
        for summary in summaries:
            by_kind.setdefault(summary.kind, []).append(NameFigures.of(summary))
        return Overview(headline=headline(context.store, window, scope), by_kind=by_kind)

    @api.get(
        "/routes",
        response_model=list[NameFigures],
        summary="Every HTTP route; tokens and cost are those of the AI calls its requests made",
    )
    def routes(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> list[NameFigures]:
        summaries = context.store.overview(window, scope, SpanKind.REQUEST)
        if summaries:
            summaries = with_request_usage(
                summaries, context.store.request_usage(window, scope, Level.MINUTE)
            )
        return [NameFigures.of(summary) for summary in summaries]

    @api.get("/kinds/{kind}", response_model=list[NameFigures], summary="Tools, agents, queues…")
    def by_kind(
        kind: SpanKind,
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> list[NameFigures]:
        if kind is SpanKind.REQUEST:
            return routes(window, scope)
        return [NameFigures.of(summary) for summary in context.store.overview(window, scope, kind)]

    @api.get(
        "/series",
        response_model=list[SeriesPoint],
        summary="Points for a chart, one per bucket holding data (missing buckets had none); "
        "for requests, tokens and cost are those of the AI calls under them",
    )
    def series(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        kind: SpanKind | None = None,
        name: Annotated[str | None, text_query(512)] = None,
        step: Level | None = None,
    ) -> list[SeriesPoint]:
        level = step or chart_step(window)
        points = context.store.series(window, scope, level, kind, name)
        if kind is not SpanKind.REQUEST or not points:
            return points
        usage: dict[datetime, list[int | float]] = {}
        for row in context.store.request_usage(window, scope, level, name):
            sums = usage.setdefault(row.bucket, [0, 0, 0.0])
            sums[0] += row.input_tokens
            sums[1] += row.output_tokens
            sums[2] += row.cost
        return [
            replace(
                point,
                input_tokens=int(usage.get(point.bucket, [0, 0, 0.0])[0]),
                output_tokens=int(usage.get(point.bucket, [0, 0, 0.0])[1]),
                cost=float(usage.get(point.bucket, [0, 0, 0.0])[2]),
            )
            for point in points
        ]

    return api


def chart_step(window: TimeRange) -> Level:
    """Minutes up to six hours, hours beyond: a chart stays a few hundred points at most."""
    return Level.MINUTE if window.end - window.start <= timedelta(hours=6) else Level.HOUR
