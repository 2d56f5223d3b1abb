"""Where the OTLP endpoint is served, by which keys, and what a full buffer answers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

import watchkeeper
from watchkeeper.config import ConfigurationError, Settings, load_settings
from watchkeeper.otlp import otlp_component
from watchkeeper.otlp.component import OtlpComponent
from watchkeeper.recording.default import set_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.runtime.runtime import Runtime, create_app
from watchkeeper.testing import MemorySink

INGEST_KEY = "component-ingest-key-0123456789"
API_KEY = "component-api-key-0123456789"
PROTOBUF = {"Content-Type": "application/x-protobuf", "X-API-Key": INGEST_KEY}


@pytest.fixture(autouse=True)
def _no_process_recorder() -> Iterator[None]:
    yield
    set_recorder(None)


def _settings(tmp_path: Path, **values: object) -> Settings:
    return load_settings(sqlite_path=tmp_path / "component.db", **values)


def _request(spans: int) -> bytes:
    now = time.time_ns()
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=secrets.token_bytes(16),
                                span_id=secrets.token_bytes(8),
                                name="work",
                                start_time_unix_nano=now,
                                end_time_unix_nano=now + 1_000,
                            )
                            for _ in range(spans)
                        ]
                    )
                ]
            )
        ]
    ).SerializeToString()


def test_ingest_only_keys_serve_the_endpoint_without_the_api(tmp_path: Path) -> None:
    app = FastAPI()
    runtime = watchkeeper.instrument(
        app, _settings(tmp_path, ingest_keys=[INGEST_KEY]), outbound=False
    )
    assert runtime.api is None
    names = [component.name for component in runtime.components]
    assert "otlp" in names
    assert "api" not in names
    assert "dashboard" not in names
    with TestClient(app) as client:
        assert client.post(
            "/watchkeeper/v1/traces", content=_request(2), headers=PROTOBUF
        ).is_success
        assert client.get("/watchkeeper/api/v1/overview", headers=PROTOBUF).status_code == 404


def test_without_keys_or_with_ingest_off_there_is_no_endpoint(tmp_path: Path) -> None:
    assert "otlp" not in [c.name for c in Runtime(_settings(tmp_path)).components]
    off = _settings(tmp_path, api_keys=[API_KEY], otlp_ingest=False)
    assert "otlp" not in [c.name for c in Runtime(off).components]


def test_watchkeeper_serve_takes_traces_at_the_root(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, api_keys=[API_KEY], ingest_keys=[INGEST_KEY]))
    with TestClient(app) as client:
        answer = client.post("/v1/traces", content=_request(1), headers=PROTOBUF)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-protobuf"
        assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
        api = client.get("/api/v1/overview", headers={"X-API-Key": INGEST_KEY})
        assert api.status_code == 401


def test_a_full_buffer_is_a_counted_drop_and_a_partial_success(tmp_path: Path) -> None:
    settings = _settings(tmp_path, buffer_size=100, batch_size=100, api_keys=[API_KEY])
    recorder = Recorder(settings, sink=MemorySink())  # not started: nothing drains the buffer
    component = OtlpComponent.from_settings(recorder, settings, "")
    app = FastAPI()
    app.include_router(component.router())
    with TestClient(app) as client:
        headers = {**PROTOBUF, "X-API-Key": API_KEY}
        answer = client.post("/v1/traces", content=_request(130), headers=headers)
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 30
    assert "buffer is full" in partial.error_message
    assert recorder.stats().dropped["buffer_full"] == 30
    assert recorder.stats().buffer_depth == 100


def test_ingest_keys_without_the_otlp_extra_are_a_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("watchkeeper.otlp._installed", lambda module: False)
    settings = _settings(tmp_path, api_keys=[API_KEY])
    recorder = Recorder(settings, sink=MemorySink())
    assert otlp_component(recorder, settings, "") is None
    with pytest.raises(ConfigurationError, match=r"watchkeeper\[otlp\]"):
        otlp_component(recorder, _settings(tmp_path, ingest_keys=[INGEST_KEY]), "")
