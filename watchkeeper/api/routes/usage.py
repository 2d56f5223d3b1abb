"""Usage and cost by model, user and organisation; queue figures; the recorder itself."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from watchkeeper.api.context import ApiContext
from watchkeeper.api.errors import NotFound
from watchkeeper.api.params import Limit, current_scope, text_path, time_range
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import Dimension
from watchkeeper.model.stored import StoredMetric, UsageRow
from watchkeeper.recording.stats import StatsSnapshot


class UsageBy(StrEnum):
    MODEL = "model"
    USER = "user"
    ORG = "org"

    @property
    def dimension(self) -> Dimension:
        return Dimension(self.value)


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["usage"])

    @api.get(
        "/costs/{by}",
        response_model=list[UsageRow],
        summary="Calls, tokens and cost by model, user or organisation (most expensive first)",
    )
    def costs(
        by: UsageBy,
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
    ) -> list[UsageRow]:
        return context.store.usage(window, scope, by.dimension, limit)

    for path, dimension, summary in (
        ("/users", Dimension.USER, "Users by usage"),
        ("/organisations", Dimension.ORG, "Organisations by usage"),
    ):
        api.add_api_route(
            path, _usage_of(context, dimension), response_model=list[UsageRow], summary=summary
        )

    @api.get(
        "/metrics/{name}",
        response_model=list[StoredMetric],
        summary="Points of a business, queue or system metric (e.g. queue.tts_jobs.size)",
    )
    def metric(
        name: Annotated[str, text_path(256)],
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[StoredMetric]:
        return context.store.metrics(window, scope, name, limit)

    @api.get(
        "/recorder",
        response_model=StatsSnapshot,
        summary="The in-process recorder's own health: recorded, flushed, dropped, lag",
    )
    def recorder() -> StatsSnapshot:
        if context.recorder is None:
            raise NotFound(
                "this server reads a store and records nothing itself; ask an instrumented "
                "app's /watchkeeper/api/v1/recorder for its recorder figures"
            )
        return context.recorder.stats()

    return api


def _usage_of(context: ApiContext, dimension: Dimension) -> Callable[..., list[UsageRow]]:
    def usage(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
    ) -> list[UsageRow]:
        return context.store.usage(window, scope, dimension, limit)

    return usage
