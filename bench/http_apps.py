"""The apps the HTTP benchmark serves: one hello-world app, bare or instrumented four ways.

Each factory is started by uvicorn in its own process (``--factory``), so instrumentations
never share a process. ``BENCH_UPSTREAM`` is the local server the ``/call`` endpoint calls.
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI


def _app() -> FastAPI:
    app = FastAPI()
    upstream = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9")
    client = httpx.AsyncClient(base_url=upstream)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/call")
    async def call() -> dict[str, int]:
        response = await client.get("/upstream")
        return {"status": response.status_code}

    return app


def bare() -> FastAPI:
    return _app()


def watchkeeper() -> FastAPI:
    """Settings from the environment (``WATCHKEEPER_*``): the benchmark names a fresh store and
    collector directory, and the collector mode, per variant, the same for every worker."""
    import watchkeeper as wk  # noqa: PLC0415 - only this variant loads Watchkeeper

    app = _app()
    wk.instrument(app, serve=False)
    return app


def opentelemetry() -> FastAPI:
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)
    app = _app()
    FastAPIInstrumentor.instrument_app(app)
    return app


def prometheus() -> FastAPI:
    from prometheus_fastapi_instrumentator import Instrumentator  # noqa: PLC0415

    app = _app()
    Instrumentator().instrument(app)
    return app


def upstream() -> FastAPI:
    app = FastAPI()

    @app.get("/upstream")
    async def answer() -> dict[str, str]:
        return {"ok": "yes"}

    return app
