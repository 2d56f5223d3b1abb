"""Putting the REST API together: inside an instrumented app, or as ``watchkeeper serve``.

``mount_api`` serves the API under a prefix of the user's own app, fed live by its recorder.
``create_app`` is the standalone server over a store that app replicas write into: API, health
and Prometheus metrics, with the live feed polling the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from watchkeeper._version import __version__
from watchkeeper.access.keys import ApiKeyAuth
from watchkeeper.api.context import ApiContext
from watchkeeper.api.errors import install_error_handlers
from watchkeeper.api.live import LiveHub, StorePoller
from watchkeeper.api.routes import integrations, issues, live, overview, traces, usage
from watchkeeper.api.schemas import ERROR_RESPONSES
from watchkeeper.config import Settings, load_settings
from watchkeeper.dashboard.router import mount_dashboard
from watchkeeper.health.router import mount_health
from watchkeeper.metrics.endpoint import mount_metrics
from watchkeeper.recording.recorder import Recorder
from watchkeeper.storage.base import Store
from watchkeeper.storage.factory import open_store

API_PREFIX = "/api/v1"


def api_router(context: ApiContext, hub: LiveHub, poll_store: bool) -> APIRouter:
    """Every ``/api/v1`` route behind the API key, with the live feed's background tasks."""
    auth = ApiKeyAuth.from_settings(context.settings)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(live.publish_figures(context, hub))]
        if poll_store:
            tasks.append(asyncio.create_task(StorePoller(hub, context.store).run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    router = APIRouter(prefix=API_PREFIX, lifespan=lifespan)
    protected = APIRouter(dependencies=[Depends(auth)], responses=ERROR_RESPONSES)
    for module in (overview, integrations, traces, issues, usage):
        protected.include_router(module.router(context))
    router.include_router(protected)
    router.include_router(live.router(context, hub, auth))
    return router


def mount_api(
    app: FastAPI,
    recorder: Recorder,
    settings: Settings | None = None,
    *,
    prefix: str = "/watchkeeper",
    store: Store | None = None,
) -> LiveHub:
    """Serve the API under ``prefix`` in ``app``; new spans reach the live feed from ``recorder``.

    The API reads through its own connection pool to the recorder's store (opened here, so a
    missing key or an unreachable store fails at start-up with a message naming the setting).
    """
    effective = settings or recorder.settings
    context = ApiContext.build(store or open_store(effective), effective, recorder)
    hub = LiveHub()
    recorder.observers.append(hub.observe)
    install_error_handlers(app)
    app.include_router(api_router(context, hub, poll_store=False), prefix=prefix)
    return hub


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    recorder: Recorder | None = None,
) -> FastAPI:
    """The standalone server: dashboard, API, health and metrics over the settings' store."""
    effective = settings or load_settings()
    store = store or open_store(effective)
    # The server records only its own system figures; the store is the apps' shared one.
    own = recorder or Recorder(effective, sink=store)
    context = ApiContext.build(store, effective, recorder)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        own.start()
        try:
            yield
        finally:
            own.stop()

    app = FastAPI(
        title="Watchkeeper",
        version=__version__,
        description="Traces, costs and health of an AI application, as recorded by Watchkeeper.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(api_router(context, LiveHub(), poll_store=True))
    mount_health(app, own, effective)
    mount_metrics(app, own, effective)
    mount_dashboard(app, "")
    return app
