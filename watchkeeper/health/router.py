"""The health endpoints, and the runtime component that keeps their figures current."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from watchkeeper.access.keys import ApiKeyAuth
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
    monitor: HealthMonitor, auth: ApiKeyAuth, prefix: str = "", include_in_schema: bool = True
) -> APIRouter:
    """The health endpoints, answered from ``monitor``'s in-memory state.

    ``auth`` guards ``/health/configuration``; routes raising :class:`Unauthorized` need
    :func:`unauthorized_response` registered as the application's handler for it.
    """
    router = APIRouter(prefix=prefix, tags=["health"], include_in_schema=include_in_schema)

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


class HealthComponent:
    """Health for the runtime: the store probe, the system sampler and the endpoints.

    Probes and the loop-lag monitor run on the serving event loop, so :meth:`start` is awaited
    there; the endpoints only read their latest results.
    """

    name = "health"

    def __init__(
        self,
        recorder: Recorder,
        settings: Settings,
        probes: ProbeRegistry | None = None,
        sampler: SystemSampler | None = None,
        circuits: CircuitStateProvider | None = None,
        version: str | None = None,
        prefix: str = "",
    ) -> None:
        self.probes = probes or ProbeRegistry()
        if STORE_PROBE not in self.probes:
            register_store_probe(self.probes, recorder)
        self.sampler = sampler or SystemSampler(recorder, settings)
        self.monitor = HealthMonitor(
            recorder, settings, self.probes, self.sampler, circuits or NoCircuits(), version
        )
        auth = _configuration_auth(settings)
        self._router = health_router(self.monitor, auth)
        if prefix:
            # Also beside Watchkeeper's other endpoints, for a host that has routes of its own
            # at /health or /metrics (documented once, at the root).
            self._router.include_router(health_router(self.monitor, auth, prefix, False))

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        self.probes.start()
        self.sampler.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        self.sampler.stop()
        await self.probes.stop()
