"""The ``/metrics`` endpoint Prometheus scrapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from watchkeeper.access.keys import ApiKeyAuth, Unauthorized, presented_key, unauthorized_response
from watchkeeper.config import Settings
from watchkeeper.metrics.exporter import PrometheusExporter
from watchkeeper.recording.recorder import Recorder


def metrics_router(
    recorder: Recorder,
    settings: Settings | None = None,
    path: str = "/metrics",
    exporter: PrometheusExporter | None = None,
) -> APIRouter:
    """A router serving the recorder's metrics at ``path``.

    The scrape's ``Accept`` header chooses Prometheus text 0.0.4 or OpenMetrics 1.0.0. With
    ``settings.protect_metrics`` a key is required, as ``Authorization: Bearer`` (what Prometheus'
    ``authorization`` scrape option sends) or ``X-API-Key``.
    """
    settings = settings or recorder.settings
    exporter = exporter or PrometheusExporter(recorder, settings)
    auth = ApiKeyAuth.from_settings(settings, enabled=settings.protect_metrics)
    router = APIRouter()

    # A plain function: FastAPI runs it in its thread pool, off the event loop.
    @router.get(path, include_in_schema=False)
    def metrics(request: Request) -> Response:
        headers = request.headers
        try:
            auth.check(presented_key(headers.get("authorization"), headers.get("x-api-key")))
        except Unauthorized as error:
            return unauthorized_response(error)
        body, content_type = exporter.exposition(headers.get("accept"))
        return Response(body, media_type=content_type)

    return router


def mount_metrics(
    app: FastAPI,
    recorder: Recorder,
    settings: Settings | None = None,
    path: str = "/metrics",
) -> PrometheusExporter:
    """Serve ``/metrics`` from ``app``, and close the exporter when the app shuts down."""
    exporter = PrometheusExporter(recorder, settings)
    app.include_router(metrics_router(recorder, settings, path, exporter))
    _close_on_shutdown(app, exporter)
    return exporter


def _close_on_shutdown(app: FastAPI, exporter: PrometheusExporter) -> None:
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            exporter.close()

    app.router.lifespan_context = lifespan
