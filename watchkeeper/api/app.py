"""The REST API as a runtime component: ``/api/v1`` behind access control's guard (keys,
roles, organisations, rate limits), and the live feed.

Inside an instrumented app the live feed is fed by the recorder's batches as they are built;
under ``watchkeeper serve``, which records nothing of the apps, it polls the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends

from watchkeeper.access.control import AccessControl
from watchkeeper.api.context import ApiContext
from watchkeeper.api.live import LiveHub, StorePoller
from watchkeeper.api.routes import (
    audit,
    configuration,
    errors,
    integrations,
    issues,
    keys,
    live,
    logs,
    overview,
    session,
    traces,
    usage,
)
from watchkeeper.api.schemas import ACCESS_RESPONSES

API_PREFIX = "/api/v1"


def api_router(
    context: ApiContext, hub: LiveHub, access: AccessControl, prefix: str = ""
) -> APIRouter:
    """Every ``/api/v1`` route behind the guard, but the login."""
    router = APIRouter(prefix=prefix + API_PREFIX)
    protected = APIRouter(dependencies=[Depends(access.guard)], responses=ACCESS_RESPONSES)
    for module in (overview, integrations, traces, issues, logs, errors, usage):
        protected.include_router(module.router(context))
    protected.include_router(keys.router(access))
    protected.include_router(audit.router(access))
    protected.include_router(configuration.router(context, access))
    protected.include_router(session.guarded(access, prefix))
    router.include_router(protected)
    router.include_router(session.login(access, prefix))
    router.include_router(live.router(context, hub, access))
    return router


class ApiComponent:
    name = "api"

    def __init__(
        self, context: ApiContext, access: AccessControl, prefix: str, poll_store: bool
    ) -> None:
        self.context = context
        self.hub = LiveHub()
        self._poll_store = poll_store
        self._router = api_router(context, self.hub, access, prefix)
        self._tasks: list[asyncio.Task[None]] = []

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        recorder = self.context.recorder
        if not self._poll_store and recorder is not None:
            recorder.observers.append(self.hub.observe)
        self._tasks.append(asyncio.create_task(live.publish_figures(self.context, self.hub)))
        if self._poll_store:
            poller = StorePoller(self.hub, self.context.stores)
            self._tasks.append(asyncio.create_task(poller.run()))

    async def stop(self) -> None:
        recorder = self.context.recorder
        if recorder is not None and self.hub.observe in recorder.observers:
            recorder.observers.remove(self.hub.observe)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
