"""A small FastAPI app served by uvicorn in the end-to-end tests (settings from the environment).

Request spans are recorded by a minimal middleware here, standing in for Watchkeeper's ASGI
instrumentation, with the attributes the metrics observer reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from watchkeeper.config import load_settings
from watchkeeper.metrics import METHOD_ATTRIBUTE, STATUS_CODE_ATTRIBUTE, mount_metrics
from watchkeeper.recording.model import SpanKind
from watchkeeper.recording.recorder import Recorder
from watchkeeper.testing import MemorySink

recorder = Recorder(load_settings(flush_interval=0.1), sink=MemorySink())


@asynccontextmanager
async def lifespan(application: FastAPI) -> AsyncIterator[None]:
    recorder.start()
    try:
        yield
    finally:
        recorder.stop()


app = FastAPI(lifespan=lifespan)
mount_metrics(app, recorder)


@app.middleware("http")
async def record_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.url.path == "/metrics":
        return await call_next(request)
    with recorder.span("unmatched", SpanKind.REQUEST) as span:
        response = await call_next(request)
        route = request.scope.get("route")
        span.name = getattr(route, "path", "unmatched")
        span.set_attribute(METHOD_ATTRIBUTE, request.method)
        span.set_attribute(STATUS_CODE_ATTRIBUTE, response.status_code)
    return response


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}
