"""The ``/metrics`` endpoint Prometheus scrapes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

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


class MetricsComponent:
    """``/metrics`` for the runtime; closing the exporter on stop retires this worker's gauges."""

    name = "metrics"

    def __init__(self, recorder: Recorder, settings: Settings, path: str = "/metrics") -> None:
        self.exporter = PrometheusExporter(recorder, settings)
        self._router = metrics_router(recorder, settings, path, self.exporter)

    def router(self) -> APIRouter:
        return self._router

    async def start(self) -> None:
        """The exporter observes the recorder from its creation on."""

    async def stop(self) -> None:
        self.exporter.close()
