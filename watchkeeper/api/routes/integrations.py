"""Integrations (LLMs, speech, vector stores…) with their health judged from stored traffic.

The same thresholds and grading as ``/health`` are used, applied to the store's figures for the
last five minutes, so ``watchkeeper serve`` judges replicas it does not run itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import current_scope
from watchkeeper.api.schemas import IntegrationHealth, NameFigures
from watchkeeper.health.status import HealthStatus
from watchkeeper.health.traffic import judge_traffic
from watchkeeper.recording.model import SpanKind
from watchkeeper.recording.windows import WindowStats
from watchkeeper.storage.base import NameSummary, Scope, TimeRange

JUDGED_WINDOW = timedelta(minutes=5)


def judge(context: ApiContext, scope: Scope) -> list[IntegrationHealth]:
    summaries = context.store.overview(TimeRange.last(JUDGED_WINDOW), scope, SpanKind.INTEGRATION)
    window = [_as_window(summary) for summary in summaries]
    services = judge_traffic(
        window, frozenset({SpanKind.INTEGRATION.value}), context.thresholds, {}
    )
    results = []
    for summary in summaries:
        service = services.get(summary.name)
        checks = [check for group in service.checks.values() for check in group] if service else []
        status = service.status if service else HealthStatus.PASS
        reasons = [
            check.output for check in checks if check.output and check.status != HealthStatus.PASS
        ]
        results.append(
            IntegrationHealth(
                name=summary.name,
                status=status.value,
                figures=NameFigures.of(summary),
                reasons=reasons,
            )
        )
    return results


def _as_window(summary: NameSummary) -> WindowStats:
    return WindowStats(
        kind=summary.kind,
        name=summary.name,
        window_seconds=int(JUDGED_WINDOW.total_seconds()),
        count=summary.count,
        errors=summary.errors,
        p50=summary.p50,
        p95=summary.p95,
        p99=summary.p99,
    )


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["integrations"])

    @api.get(
        "/integrations",
        response_model=list[IntegrationHealth],
        summary="Every integration with its health over the last five minutes",
    )
    def integrations(scope: Annotated[Scope, Depends(current_scope)]) -> list[IntegrationHealth]:
        return judge(context, scope)

    return api
