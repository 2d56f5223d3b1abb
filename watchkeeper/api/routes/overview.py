"""Overview, routes, per-kind summaries (tools, agents, queues) and chart series."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import current_scope, time_range
from watchkeeper.api.schemas import Headline, NameFigures, Overview
from watchkeeper.recording.model import SpanKind
from watchkeeper.storage.base import Scope, SeriesPoint, TimeRange
from watchkeeper.storage.rollups import Level

ACTIVE_SESSION_WINDOW = timedelta(minutes=5)


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["overview"])
    store = context.store

    @api.get("/overview", response_model=Overview, summary="Headline figures and every name")
    def overview(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> Overview:
        summaries = store.overview(window, scope)
        totals = {total.kind: total for total in store.kind_totals(window, scope)}
        requests = totals.get(SpanKind.REQUEST.value)
        seconds = max((window.end - window.start).total_seconds(), 1.0)
        count = requests.count if requests else 0
        errors = requests.errors if requests else 0
        cost = sum(total.cost for total in totals.values())
        active = store.sessions(
            TimeRange.last(ACTIVE_SESSION_WINDOW, window.end), scope, limit=1000
        ).items
        by_kind: dict[str, list[NameFigures]] = {}
        for summary in summaries:
            by_kind.setdefault(summary.kind, []).append(NameFigures.of(summary))
        return Overview(
            headline=Headline(
                requests=count,
                requests_per_second=count / seconds,
                errors=errors,
                error_rate=errors / count if count else 0.0,
                p50=requests.p50 if requests else None,
                p95=requests.p95 if requests else None,
                p99=requests.p99 if requests else None,
                active_sessions=sum(1 for session in active if not session.ended),
                cost=cost,
                cost_per_hour=cost / (seconds / 3600),
                cost_unknown_calls=sum(total.cost_unknown for total in totals.values()),
            ),
            by_kind=by_kind,
        )

    @api.get("/routes", response_model=list[NameFigures], summary="Every HTTP route")
    def routes(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> list[NameFigures]:
        return _kind(window, scope, SpanKind.REQUEST)

    @api.get("/kinds/{kind}", response_model=list[NameFigures], summary="Tools, agents, queues…")
    def by_kind(
        kind: SpanKind,
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> list[NameFigures]:
        return _kind(window, scope, kind)

    @api.get("/series", response_model=list[SeriesPoint], summary="Points for a chart")
    def series(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        kind: SpanKind | None = None,
        name: Annotated[str | None, Query(max_length=512)] = None,
        step: Level | None = None,
    ) -> list[SeriesPoint]:
        return store.series(window, scope, step or _step(window), kind, name)

    def _kind(window: TimeRange, scope: Scope, kind: SpanKind) -> list[NameFigures]:
        return [NameFigures.of(summary) for summary in store.overview(window, scope, kind)]

    return api


def _step(window: TimeRange) -> Level:
    """Minutes up to six hours, hours beyond: a chart stays a few hundred points at most."""
    return Level.MINUTE if window.end - window.start <= timedelta(hours=6) else Level.HOUR
