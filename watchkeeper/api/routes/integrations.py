"""Integrations (LLMs, speech, vector stores…) with their health judged from stored traffic
(see :mod:`watchkeeper.health.stored`), so ``watchkeeper serve`` judges replicas it does not run.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import current_scope
from watchkeeper.api.schemas import IntegrationHealth, NameFigures
from watchkeeper.health.stored import judge_stored_integrations
from watchkeeper.model.query import Scope


def judge(context: ApiContext, scope: Scope) -> list[IntegrationHealth]:
    return [
        IntegrationHealth(
            name=judged.summary.name,
            status=judged.status.value,
            figures=NameFigures.of(judged.summary),
            reasons=judged.reasons,
        )
        for judged in judge_stored_integrations(context.store, context.thresholds, scope)
    ]


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
