"""``watchkeeper.instrument(app)``: the two lines that make an app observable.

Adds the one request middleware and nothing else to the host: Watchkeeper's endpoints are
answered by its own application (so the host's exception handlers, OpenAPI document, route ids
and middleware order stay as they were), and it starts and stops with the host's ASGI lifespan
without replacing it. Makes the runtime's recorder the process's own (so decorators find it) and
records outbound httpx, OpenAI and Anthropic calls where those libraries are installed, and,
while the runtime runs, the app's own logging records.
"""

from __future__ import annotations

from fastapi import FastAPI

from watchkeeper.config import Settings
from watchkeeper.instrumentation.anthropic import instrument_anthropic
from watchkeeper.instrumentation.asgi import WatchkeeperMiddleware
from watchkeeper.instrumentation.httpx import instrument_httpx
from watchkeeper.instrumentation.openai import instrument_openai
from watchkeeper.instrumentation.options import RequestOptions
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.runtime.runtime import DEFAULT_PREFIX, Runtime


def instrument(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    recorder: Recorder | None = None,
    options: RequestOptions | None = None,
    prefix: str = DEFAULT_PREFIX,
    serve: bool = True,
    outbound: bool = True,
) -> Runtime:
    """Record every request of ``app``; serve health (and, with keys, the API and dashboard)."""
    if not isinstance(app, FastAPI):
        raise TypeError(f"watchkeeper.instrument() needs a FastAPI application, got {app!r}")
    # Health documents give the app's version, as the service they describe is the app.
    runtime = Runtime(
        settings,
        recorder=recorder,
        prefix=prefix,
        serve=serve,
        version=app.version,
        ship=True,
        capture_logs=True,
    )
    set_recorder(runtime.recorder)
    app.add_middleware(
        WatchkeeperMiddleware,
        recorder=runtime.recorder,
        options=options or RequestOptions.from_settings(runtime.settings),
        guest=runtime.guest(app.router.routes),
    )
    if outbound:
        _record_outbound_calls(runtime.recorder)
    return runtime


def _record_outbound_calls(recorder: Recorder) -> None:
    """httpx and the OpenAI and Anthropic clients, each only if the app has it installed."""
    for instrument_library in (instrument_httpx, instrument_openai, instrument_anthropic):
        try:
            instrument_library(recorder)
        except ImportError:
            continue  # that library is not installed: nothing of it to record
