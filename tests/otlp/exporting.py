"""The export tests' sender: an instrumented app, served by uvicorn on 127.0.0.1 with its own
SQLite file, whose runtime exports every span it records to an OTLP endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import openai
from fastapi import FastAPI

import watchkeeper
from tests.support.server import LiveServer
from watchkeeper.config import Settings, load_settings
from watchkeeper.instrumentation.openai import instrument_openai, uninstrument_openai
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import StoredSpan
from watchkeeper.otlp.export import OtlpExporter
from watchkeeper.recording.default import set_recorder
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage.factory import open_store
from watchkeeper.testing.fake_ai import FakeAIServer

SERVICE = "planner"
MODEL = "gpt-4o-mini"
INPUT_TOKENS = 40
OUTPUT_TOKENS = 12
IDENTITY = {"X-User-ID": "user-7", "X-Session-ID": "session-3", "X-Org-ID": "acme"}
SPANS_PER_PLAN = 4
"""The request, a tool call, an OpenAI call and a failed step."""


@dataclass
class Sender:
    url: str
    settings: Settings
    runtime: Runtime

    @property
    def exporter(self) -> OtlpExporter:
        exporter = self.runtime.exporter
        assert exporter is not None
        return exporter

    def dropped(self, reason: str) -> int:
        return self.runtime.recorder.stats().dropped[reason]

    def plan(self) -> int:
        """``GET /plan``; its trace id."""
        answer = httpx.get(f"{self.url}/plan", headers=IDENTITY, timeout=60)
        assert answer.status_code == 200, answer.text
        return int(answer.headers["X-Trace-ID"], 16)

    def stored(self, trace_id: int) -> list[StoredSpan]:
        """The trace as the sender's own store holds it."""
        assert self.runtime.recorder.flush(30.0)
        store = open_store(self.settings)
        try:
            page = store.spans(TimeRange.last(timedelta(hours=1)), Scope.everything(), limit=1_000)
        finally:
            store.close()
        return [span for span in page.items if span.trace_id == f"{trace_id:032x}"]


@contextlib.contextmanager
def sending(
    directory: Path, endpoint: str, ai: FakeAIServer, **settings: object
) -> Iterator[Sender]:
    defaults: dict[str, object] = {
        "sqlite_path": directory / "sender.db",
        "service": SERVICE,
        "otlp_export_endpoint": endpoint,
        "flush_interval": 0.1,
        "raise_internal_errors": True,
    }
    effective = load_settings(**{**defaults, **settings})
    app = FastAPI()
    client = openai.OpenAI(base_url=ai.openai_base_url, api_key="test-key", max_retries=0)
    runtime = watchkeeper.instrument(app, effective, outbound=False)
    recorder = runtime.recorder

    @app.get("/plan")
    def plan() -> dict[str, str]:
        with recorder.span("find-seeds", SpanKind.TOOL) as tool:
            tool.set_attribute("details", {"beds": 3, "sunny": True})
            # A lone surrogate, as a badly decoded byte string leaves: protobuf cannot encode it.
            tool.set_attribute("note", "caf\udce9")
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "What should I plant in April?"}]
        )
        with contextlib.suppress(LookupError), recorder.span("render"):
            raise LookupError("no template for April")
        return {"answer": completion.choices[0].message.content or ""}

    instrument_openai(recorder)
    server = LiveServer(app).start()
    try:
        yield Sender(server.url, effective, runtime)
    finally:
        server.stop()
        uninstrument_openai()
        set_recorder(None)


def fake_ai() -> FakeAIServer:
    return FakeAIServer(
        seed=5, latency=0.01, input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS
    )
