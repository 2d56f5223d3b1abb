"""The health endpoints, and the runtime component that keeps their figures current."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from watchkeeper.access.audit import CONFIGURATION
from watchkeeper.access.guard import needs
from watchkeeper.access.keys import ApiKeyAuth, Forbidden, Unauthorized, presented_key
from watchkeeper.access.roles import Permission
from watchkeeper.config import Settings
from watchkeeper.health.circuits import CircuitStateProvider, NoCircuits
from watchkeeper.health.monitor import HealthMonitor
from watchkeeper.health.probes import ProbeRegistry
from watchkeeper.health.status import HEALTH_JSON, HealthReport
from watchkeeper.health.store_probe import STORE_PROBE, register_store_probe
from watchkeeper.health.system import SystemSampler
from watchkeeper.model.json import JsonValue
from watchkeeper.recording.recorder import Recorder


class HealthJSONResponse(JSONResponse):
    media_type = HEALTH_JSON


_FAILING: dict[int | str, dict[str, Any]] = {
    503: {"description": "Failing: the health document says which check failed."}
}


def _answer(report: HealthReport, full: bool = True) -> HealthJSONResponse:
    document = report.to_json() if full else status_only(report.to_json())
    return HealthJSONResponse(document, status_code=report.status.http_status)


_FIGURES = ("observedValue", "observedUnit", "output")


def status_only(document: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """A health document without figures or error text: each check's status, nothing more.

    What anyone may see: rates, latencies, host metrics and store errors (which name hosts)
    need a key.
    """
    checks = document.get("checks")
    if not isinstance(checks, dict):
        return document
    stripped: dict[str, JsonValue] = {}
    for key, entries in checks.items():
        stripped[key] = [
            {name: value for name, value in entry.items() if name not in _FIGURES}
            if isinstance(entry, dict)
            else entry
            for entry in (entries if isinstance(entries, list) else [])
        ]
    return {**document, "checks": stripped}


def _shows_figures(auth: ApiKeyAuth, request: Request) -> bool:
    """Whether the caller presented a valid key (or access is open): then figures are shown."""
    headers = request.headers
    try:
        auth.check(presented_key(headers.get("authorization"), headers.get("x-api-key")))
    except (Unauthorized, Forbidden):
        return False
    return True


def _configuration_auth(settings: Settings) -> ApiKeyAuth:
    if not settings.protect_configuration:
        return ApiKeyAuth((), open_access=False, enabled=False)
    if settings.api_keys or settings.open_access:
        return ApiKeyAuth.from_settings(settings)
    # Health must mount without keys; the configuration stays locked rather than open (the
    # runtime says once, at start, what a key would open).
    return ApiKeyAuth((), open_access=False)


def _figures_auth(settings: Settings) -> ApiKeyAuth:
    """The key that shows health figures: the API's keys; with none set, nobody's."""
    if settings.api_keys or settings.open_access:
        return ApiKeyAuth.from_settings(settings)
    return ApiKeyAuth((), open_access=False)


_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or not a valid one."}
}


def health_router(
    monitor: HealthMonitor,
    auth: Callable[..., object],
    prefix: str = "",
    include_in_schema: bool = True,
    figures_auth: ApiKeyAuth | None = None,
) -> APIRouter:
    """The health endpoints, answered from ``monitor``'s in-memory state.

    Every health document is public with each check's status only; with a valid key
    (``figures_auth``) it carries the figures and outputs too. ``/health/metrics`` is all
    figures, so it needs the key. ``auth`` guards ``/health/configuration``; routes raising
    :class:`Unauthorized` need :func:`unauthorized_response` registered as the application's
    handler for it.
    """
    router = APIRouter(prefix=prefix, tags=["health"], include_in_schema=include_in_schema)
    figures = figures_auth or ApiKeyAuth((), open_access=False)

    @router.get("/health", response_class=HealthJSONResponse, responses=_FAILING)
    async def overall(request: Request) -> Response:
        return _answer(monitor.overall(), _shows_figures(figures, request))

    @router.get("/health/live", response_class=HealthJSONResponse, responses=_FAILING)
    @router.get("/livez", response_class=HealthJSONResponse, responses=_FAILING)
    async def live(request: Request) -> Response:
        # Answered on the event loop itself, so an answer proves the loop is alive.
        return _answer(monitor.live(), _shows_figures(figures, request))

    @router.get("/health/ready", response_class=HealthJSONResponse, responses=_FAILING)
    @router.get("/readyz", response_class=HealthJSONResponse, responses=_FAILING)
    async def ready(request: Request) -> Response:
        return _answer(monitor.ready(), _shows_figures(figures, request))

    @router.get("/health/services", response_class=HealthJSONResponse, responses=_FAILING)
    async def services(request: Request) -> Response:
        return _answer(monitor.services_report(), _shows_figures(figures, request))

    @router.get(
        "/health/services/{name}",
        response_class=HealthJSONResponse,
        responses={**_FAILING, 404: {"description": "No service of that name is known."}},
    )
    async def service(name: str, request: Request) -> Response:
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
        return _answer(report, _shows_figures(figures, request))

    @router.get(
        "/health/configuration",
        dependencies=[Depends(auth)],
        openapi_extra=needs(Permission.CONFIGURE),
        responses={401: {"description": "No API key, or not a valid one."}},
    )
    async def configuration() -> Response:
        return JSONResponse(monitor.configuration())

    @router.get("/health/metrics", dependencies=[Depends(figures)], responses=_UNAUTHORIZED)
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
        access: ApiKeyAuth | None = None,
    ) -> None:
        self.probes = probes or ProbeRegistry()
        if STORE_PROBE not in self.probes:
            register_store_probe(self.probes, recorder)
        self.sampler = sampler or SystemSampler(recorder, settings)
        self.monitor = HealthMonitor(
            recorder, settings, self.probes, self.sampler, circuits or NoCircuits(), version
        )
        auth: Callable[..., object] = _configuration_auth(settings)
        figures = _figures_auth(settings)
        if access is not None:
            # Stored keys too; the configuration is for super admins, and each read is audited.
            figures = access
            if settings.protect_configuration:
                auth = access.dependency(Permission.CONFIGURE, CONFIGURATION)
        self._router = health_router(self.monitor, auth, figures_auth=figures)
        if prefix:
            # Also beside Watchkeeper's other endpoints, for a host that has routes of its own
            # at /health or /metrics (documented once, at the root).
            self._router.include_router(
                health_router(self.monitor, auth, prefix, False, figures_auth=figures)
            )

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        self.probes.start()
        self.sampler.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        self.sampler.stop()
        await self.probes.stop()
