"""The REST API as a runtime component: ``/api/v1`` behind the API key, and the live feed.

Inside an instrumented app the live feed is fed by the recorder's batches as they are built;
under ``watchkeeper serve``, which records nothing of the apps, it polls the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends

from watchkeeper.access.keys import ApiKeyAuth
from watchkeeper.api.context import ApiContext
from watchkeeper.api.live import LiveHub, StorePoller
from watchkeeper.api.routes import integrations, issues, live, overview, traces, usage
from watchkeeper.api.schemas import ERROR_RESPONSES

API_PREFIX = "/api/v1"


def api_router(context: ApiContext, hub: LiveHub, auth: ApiKeyAuth, prefix: str = "") -> APIRouter:
    """Every ``/api/v1`` route behind ``auth``."""
    router = APIRouter(prefix=prefix + API_PREFIX)
    protected = APIRouter(dependencies=[Depends(auth)], responses=ERROR_RESPONSES)
    for module in (overview, integrations, traces, issues, usage):
        protected.include_router(module.router(context))
    router.include_router(protected)
    router.include_router(live.router(context, hub, auth))
    return router


class ApiComponent:
    name = "api"

    def __init__(
        self, context: ApiContext, auth: ApiKeyAuth, prefix: str, poll_store: bool
    ) -> None:
        self.context = context
        self.hub = LiveHub()
        self._poll_store = poll_store
        self._router = api_router(context, self.hub, auth, prefix)
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
