"""The health endpoints as a FastAPI router, and a one-call way to mount them on an app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, unauthorized_response
from watchkeeper.config import Settings
from watchkeeper.health.circuits import CircuitStateProvider, NoCircuits
from watchkeeper.health.monitor import HealthMonitor
from watchkeeper.health.probes import ProbeRegistry
from watchkeeper.health.status import HEALTH_JSON, HealthReport
from watchkeeper.health.store_probe import STORE_PROBE, register_store_probe
from watchkeeper.health.system import SystemSampler
from watchkeeper.recording.recorder import Recorder

logger = logging.getLogger("watchkeeper")


class HealthJSONResponse(JSONResponse):
    media_type = HEALTH_JSON


_FAILING: dict[int | str, dict[str, Any]] = {
    503: {"description": "Failing: the health document says which check failed."}
}


def _answer(report: HealthReport) -> HealthJSONResponse:
    return HealthJSONResponse(report.to_json(), status_code=report.status.http_status)


def _configuration_auth(settings: Settings) -> ApiKeyAuth:
    if not settings.protect_configuration:
        return ApiKeyAuth((), open_access=False, enabled=False)
    if settings.api_keys or settings.open_access:
        return ApiKeyAuth.from_settings(settings)
    # Health must mount without keys; the configuration stays locked rather than open.
    logger.warning(
        "No WATCHKEEPER_API_KEYS are set, so /health/configuration refuses every request. "
        "Set keys, or WATCHKEEPER_PROTECT_CONFIGURATION=false to show it (secrets redacted)."
    )
    return ApiKeyAuth((), open_access=False)


def health_router(
    recorder: Recorder,
    settings: Settings,
    probes: ProbeRegistry,
    sampler: SystemSampler | None,
    prefix: str = "",
    circuits: CircuitStateProvider | None = None,
    version: str | None = None,
) -> APIRouter:
    """The health endpoints; its lifespan starts the probes and the sampler on the app's loop.

    Include it with ``app.include_router`` (FastAPI merges the lifespan), and register
    :func:`unauthorized_response` for :class:`Unauthorized` unless :func:`mount_health` does.
    """
    monitor = HealthMonitor(recorder, settings, probes, sampler, circuits or NoCircuits(), version)
    auth = _configuration_auth(settings)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        probes.start()
        if sampler is not None:
            sampler.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            if sampler is not None:
                sampler.stop()
            await probes.stop()

    router = APIRouter(prefix=prefix, lifespan=lifespan, tags=["health"])

    @router.get("/health", response_class=HealthJSONResponse, responses=_FAILING)
    async def overall() -> Response:
        return _answer(monitor.overall())

    @router.get("/health/live", response_class=HealthJSONResponse, responses=_FAILING)
    @router.get("/livez", response_class=HealthJSONResponse, responses=_FAILING)
    async def live() -> Response:
        # Answered on the event loop itself, so an answer proves the loop is alive.
        return _answer(monitor.live())

    @router.get("/health/ready", response_class=HealthJSONResponse, responses=_FAILING)
    @router.get("/readyz", response_class=HealthJSONResponse, responses=_FAILING)
    async def ready() -> Response:
        return _answer(monitor.ready())

    @router.get("/health/services", response_class=HealthJSONResponse, responses=_FAILING)
    async def services() -> Response:
        return _answer(monitor.services_report())

    @router.get(
        "/health/services/{name}",
        response_class=HealthJSONResponse,
        responses={**_FAILING, 404: {"description": "No service of that name is known."}},
    )
    async def service(name: str) -> Response:
        report = monitor.service_report(name)
        if report is None:
            known = monitor.known_services()
            listed = ", ".join(known) or "none"
            return JSONResponse(
                {
                    "error": {
                        "status": 404,
                        "message": f"no service named {name!r}; known services: {listed}",
                        "known": known,
                    }
                },
                status_code=404,
            )
        return _answer(report)

    @router.get(
        "/health/configuration",
        dependencies=[Depends(auth)],
        responses={401: {"description": "No API key, or not a valid one."}},
    )
    async def configuration() -> Response:
        return JSONResponse(monitor.configuration())

    @router.get("/health/metrics")
    async def metrics() -> Response:
        return JSONResponse(monitor.metrics())

    return router


def mount_health(
    app: FastAPI,
    recorder: Recorder,
    settings: Settings | None = None,
    prefix: str = "",
    probes: ProbeRegistry | None = None,
    sampler: SystemSampler | None = None,
    circuits: CircuitStateProvider | None = None,
) -> ProbeRegistry:
    """Add the health endpoints, the store probe and the system sampler to ``app``.

    Returns the probe registry so the app can register its own probes.
    """
    effective = settings or recorder.settings
    registry = probes or ProbeRegistry()
    if STORE_PROBE not in registry:
        register_store_probe(registry, recorder)
    app.include_router(
        health_router(
            recorder,
            effective,
            registry,
            sampler or SystemSampler(recorder, effective),
            prefix,
            circuits,
            app.version,
        )
    )

    async def handle_unauthorized(request: Request, error: Exception) -> Response:
        if isinstance(error, Unauthorized):
            return unauthorized_response(error)
        raise error

    if Unauthorized not in app.exception_handlers:
        app.add_exception_handler(Unauthorized, handle_unauthorized)
    return registry
