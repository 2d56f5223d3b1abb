"""OTLP export end to end: an instrumented app's runtime sends every span with the official
OpenTelemetry exporter to a real HTTP endpoint on 127.0.0.1 (another Watchkeeper's ingest, or a
receiver the test controls), never holding up recording, and counts what it could not send."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.otlp.exporting import (
    IDENTITY,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    SERVICE,
    SPANS_PER_PLAN,
    fake_ai,
    sending,
)
from tests.otlp.served import INGEST_KEY, Served
from tests.support.phoenix import free_port
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from watchkeeper.model.stored import StoredSpan
from watchkeeper.testing.fake_ai import FakeAIServer

HELD_SECONDS = 120.0
"""How long the controlled receiver holds an answer at most (it is released long before)."""
COMPARED = (
    "trace_id",
    "parent_id",
    "kind",
    "name",
    "operation",
    "status",
    "error_type",
    "error_message",
    "user_id",
    "org_id",
    "session_id",
    "model",
    "input_tokens",
    "output_tokens",
)


@pytest.fixture(scope="module")
def ai() -> Iterator[FakeAIServer]:
    with fake_ai() as server:
        yield server


class Receiver:
    """An OTLP/HTTP endpoint under the test's control: it counts what arrives, answers with
    ``status``, and holds its answers while :attr:`open` is clear."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.open = threading.Event()
        self.open.set()
        self.requests = 0
        self.arrived = 0
        self.spans = 0
        self.authorizations: list[str | None] = []
        app = FastAPI()
        app.add_api_route("/v1/traces", self._traces, methods=["POST"])
        self.server = LiveServer(app)

    async def _traces(self, request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        self.authorizations.append(request.headers.get("authorization"))
        spans = sum(
            len(scope.spans) for spans in message.resource_spans for scope in spans.scope_spans
        )
        self.arrived += spans
        self.requests += 1
        await asyncio.to_thread(self.open.wait, HELD_SECONDS)
        if self.status == 200:
            self.spans += spans
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            status_code=self.status,
            media_type="application/x-protobuf",
        )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.server.start()
    try:
        yield receiver
    finally:
        receiver.open.set()
        receiver.server.stop()


def _by_id(spans: list[StoredSpan]) -> dict[str, StoredSpan]:
    return {span.span_id: span for span in spans}


def test_every_span_arrives_at_another_watchkeeper_as_it_was_recorded(
    served: Served, tmp_path: Path, ai: FakeAIServer
) -> None:
    key = {"Authorization": f"Bearer {INGEST_KEY}"}
    with sending(tmp_path, served.traces_url, ai, otlp_export_headers=key) as sender:
        trace_id = sender.plan()
        wait_until(lambda: sender.exporter.exported == SPANS_PER_PLAN, what="the spans exported")
        sent = _by_id(sender.stored(trace_id))
        assert sender.runtime.recorder.stats().dropped_total == 0
    received = _by_id(served.trace(trace_id))

    assert sorted(span.name for span in sent.values()) == [
        "GET /plan",
        "find-seeds",
        "openai",
        "render",
    ]
    # Ids, parent links, kinds, names, status, errors, identity, model and tokens: all kept.
    assert received.keys() == sent.keys()
    for span_id, span in sent.items():
        copy = received[span_id]
        assert [getattr(copy, name) for name in COMPARED] == [
            getattr(span, name) for name in COMPARED
        ], span.name
        assert copy.start == span.start
        assert copy.duration == pytest.approx(span.duration, abs=1e-6)
    spans = {span.name: span for span in received.values()}
    call, request = spans["openai"], spans["GET /plan"]
    assert (call.model, call.input_tokens, call.output_tokens) == (
        MODEL,
        INPUT_TOKENS,
        OUTPUT_TOKENS,
    )
    assert call.cost is not None
    assert call.cost == pytest.approx(sent[call.span_id].cost)
    assert call.attributes["watchkeeper.cost_usd"] == pytest.approx(call.cost)
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert (call.user_id, call.org_id, call.session_id) == (
        IDENTITY["X-User-ID"],
        IDENTITY["X-Org-ID"],
        IDENTITY["X-Session-ID"],
    )
    assert request.attributes["service.name"] == SERVICE
    assert request.attributes["http.route"] == request.attributes["route"] == "/plan"
    assert request.attributes["http.response.status_code"] == 200
    assert spans["render"].status == "error"
    tool = spans["find-seeds"]
    assert tool.kind == "tool"
    # Objects travel as JSON text; text protobuf cannot encode is mended, not lost.
    assert tool.attributes["details"] == '{"beds":3,"sunny":true}'
    assert tool.attributes["note"] == "caf\ufffd"


def test_spans_of_the_last_flush_are_exported_when_the_app_stops(
    served: Served, tmp_path: Path, ai: FakeAIServer
) -> None:
    key = {"Authorization": f"Bearer {INGEST_KEY}"}
    # A flush interval far longer than the test: only the flush at shutdown sends the spans.
    with sending(
        tmp_path, served.traces_url, ai, otlp_export_headers=key, flush_interval=60
    ) as sender:
        trace_id = sender.plan()
        exporter = sender.exporter
        assert exporter.exported == 0
    assert exporter.exported == SPANS_PER_PLAN
    assert len(served.trace(trace_id)) == SPANS_PER_PLAN


WORKER = """
import watchkeeper
from watchkeeper.model.events import SpanKind

recorder = watchkeeper.configure().start()
with recorder.span("nightly-digest", SpanKind.AGENT) as span:
    print(f"{span.trace_id:032x}", flush=True)
"""
"""A script outside a web app: it neither stops the recorder nor closes anything itself."""


def test_a_script_set_up_with_configure_exports_its_spans_as_it_exits(
    served: Served, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "WATCHKEEPER_SQLITE_PATH": str(tmp_path / "worker.db"),
        "WATCHKEEPER_OTLP_EXPORT_ENDPOINT": served.traces_url,
        "WATCHKEEPER_OTLP_EXPORT_HEADERS": f"Authorization=Bearer%20{INGEST_KEY}",
        # Only the flush at exit can send the span.
        "WATCHKEEPER_FLUSH_INTERVAL": "60",
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [span] = served.trace(int(done.stdout, 16))
    assert (span.kind, span.name, span.parent_id) == ("agent", "nightly-digest", None)


def test_a_refusing_endpoint_costs_the_export_only_and_is_told_once_without_secrets(
    receiver: Receiver, tmp_path: Path, ai: FakeAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 401
    token = "Bearer export-secret-0123456789"
    with (
        caplog.at_level(logging.DEBUG),
        sending(
            tmp_path,
            receiver.server.url,
            ai,
            otlp_export_headers={"Authorization": token},
            protect_metrics=False,
        ) as sender,
    ):
        for attempt in range(1, 4):
            trace_id = sender.plan()
            refused = attempt * SPANS_PER_PLAN
            wait_until(
                lambda: sender.dropped("export_failed") == refused,  # noqa: B023 - called at once
                what="the refused spans counted",
            )
            # Recording and storing are untouched.
            assert len(sender.stored(trace_id)) == SPANS_PER_PLAN
        stats = sender.runtime.recorder.stats()
        metrics = httpx.get(f"{sender.url}/metrics", timeout=30).text
    refused = 3 * SPANS_PER_PLAN
    dropped = f'watchkeeper_recorder_events_dropped_total{{reason="export_failed"}} {refused}.0'
    assert dropped in metrics.splitlines()
    # One request per batch the recorder flushed: a plan's spans may come in one or two.
    assert len(receiver.authorizations) >= 3
    assert set(receiver.authorizations) == {token}
    assert stats.flushed >= 3 * SPANS_PER_PLAN
    assert stats.dropped_total == 3 * SPANS_PER_PLAN
    told = [
        record.getMessage() for record in caplog.records if "cannot export" in record.getMessage()
    ]
    assert len(told) == 1
    assert "to 127.0.0.1" in told[0]
    assert "401" in told[0]
    # The SDK's line per failed attempt is held back on Watchkeeper's thread.
    assert not [record for record in caplog.records if record.name.startswith("opentelemetry")]
    assert "export-secret" not in caplog.text


def test_an_unreachable_endpoint_is_counted(tmp_path: Path, ai: FakeAIServer) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with sending(tmp_path, nobody, ai, otlp_export_timeout=2) as sender:
        trace_id = sender.plan()
        wait_until(
            lambda: sender.dropped("export_failed") == SPANS_PER_PLAN,
            what="the unsent spans counted",
        )
        assert len(sender.stored(trace_id)) == SPANS_PER_PLAN
        assert sender.exporter.exported == 0


def test_a_slow_endpoint_never_holds_up_recording_and_a_full_queue_is_counted(
    receiver: Receiver, tmp_path: Path, ai: FakeAIServer
) -> None:
    receiver.open.clear()
    # The export queue holds as many spans as the recorder's buffer (100 here).
    with sending(
        tmp_path, receiver.server.url, ai, buffer_size=100, batch_size=50, otlp_export_timeout=300
    ) as sender:
        first = sender.plan()
        wait_until(lambda: receiver.requests == 1, what="the first export to arrive")
        traces = [first] + [sender.plan() for _ in range(40)]
        # Everything is stored while the endpoint holds its first answer.
        for trace_id in traces:
            assert len(sender.stored(trace_id)) == SPANS_PER_PLAN
        wait_until(lambda: sender.dropped("export_queue_full") > 0, what="a full export queue")
        receiver.open.set()
        recorded = len(traces) * SPANS_PER_PLAN
        wait_until(
            lambda: sender.exporter.exported + sender.dropped("export_queue_full") == recorded,
            what="every span exported or counted",
        )
        exported = sender.exporter.exported
    assert receiver.spans == exported
    assert 0 < exported < recorded


def test_what_an_endpoint_still_holds_at_shutdown_is_counted(
    receiver: Receiver, tmp_path: Path, ai: FakeAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.open.clear()
    with (
        caplog.at_level(logging.WARNING, logger="watchkeeper"),
        sending(
            tmp_path, receiver.server.url, ai, shutdown_timeout=1, otlp_export_timeout=300
        ) as sender,
    ):
        sender.plan()
        wait_until(lambda: receiver.requests == 1, what="the first export to arrive")
        sender.plan()
        recorder = sender.runtime.recorder
    # What was in flight when the app stopped is the endpoint's; the rest was still queued.
    queued = 2 * SPANS_PER_PLAN - receiver.arrived
    assert queued >= SPANS_PER_PLAN
    assert recorder.stats().dropped["export_shutdown"] == queued
    told = f"stopped before exporting {queued} spans"
    assert any(told in record.getMessage() for record in caplog.records)
