"""``watchkeeper.instrument(app)``: the two lines that make an app observable.

Adds the request middleware, makes the recorder the process's own (so decorators find it),
records outbound httpx, OpenAI and Anthropic calls (where those libraries are installed),
starts it when the app starts and flushes it when the app stops — around the app's own lifespan,
which still runs. Health endpoints are always mounted; the API, dashboard and ``/metrics`` only
once API keys are configured (or access is opened), since they show data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from watchkeeper.api.app import mount_api
from watchkeeper.config import Settings, load_settings
from watchkeeper.dashboard.router import mount_dashboard
from watchkeeper.health.router import mount_health
from watchkeeper.instrumentation.anthropic import instrument_anthropic
from watchkeeper.instrumentation.asgi import WatchkeeperMiddleware
from watchkeeper.instrumentation.httpx import instrument_httpx
from watchkeeper.instrumentation.openai import instrument_openai
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.metrics.endpoint import mount_metrics
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder

logger = logging.getLogger("watchkeeper")
DEFAULT_PREFIX = "/watchkeeper"


def instrument(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    recorder: Recorder | None = None,
    options: RequestOptions | None = None,
    prefix: str = DEFAULT_PREFIX,
    serve: bool = True,
    outbound: bool = True,
) -> Recorder:
    """Record every request of ``app``; serve health (and, with keys, the API and dashboard)."""
    if not isinstance(app, FastAPI):
        raise TypeError(f"watchkeeper.instrument() needs a FastAPI application, got {app!r}")
    effective = settings or (recorder.settings if recorder is not None else load_settings())
    recorder = recorder or Recorder(effective)
    set_recorder(recorder)
    app.add_middleware(
        WatchkeeperMiddleware,
        recorder=recorder,
        options=options or RequestOptions.from_settings(effective),
    )
    _run_with_app(app, recorder)
    if outbound:
        _record_outbound_calls(recorder)
    if serve:
        _serve(app, recorder, effective, prefix)
    return recorder


def _record_outbound_calls(recorder: Recorder) -> None:
    """httpx and the OpenAI and Anthropic clients, each only if the app has it installed."""
    for instrument_library in (instrument_httpx, instrument_openai, instrument_anthropic):
        try:
            instrument_library(recorder)
        except ImportError:
            continue  # that library is not installed: nothing of it to record


def _run_with_app(app: FastAPI, recorder: Recorder) -> None:
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        recorder.start()
        try:
            async with inner(application) as state:
                yield state
        finally:
            recorder.stop()

    app.router.lifespan_context = lifespan


def _serve(app: FastAPI, recorder: Recorder, settings: Settings, prefix: str) -> None:
    mount_health(app, recorder, settings)
    if not (settings.api_keys or settings.open_access):
        logger.info(
            "Watchkeeper: set WATCHKEEPER_API_KEYS to serve the dashboard, API and /metrics "
            "from this app (health endpoints are served already)."
        )
        return
    mount_api(app, recorder, settings, prefix=prefix)
    mount_dashboard(app, prefix)
    mount_metrics(app, recorder, settings)
