"""Bad log and metric exports get the same clear 4xx as traces, and lose nothing already stored."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status

from tests.otlp.served import INGEST_KEY, LIMIT, START_NS, Served

NAME = "refusals.kept"


@dataclass(frozen=True)
class Case:
    url: Callable[[Served], str]
    good: dict[str, Any]
    bad_id: dict[str, Any]
    stored: Callable[[Served], list[Any]]


def _log(trace_id: str) -> dict[str, Any]:
    record = {"timeUnixNano": str(START_NS), "body": {"stringValue": "kept"}, "traceId": trace_id}
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def _metric(trace_id: str) -> dict[str, Any]:
    point = {
        "timeUnixNano": str(START_NS),
        "asDouble": 2.5,
        "exemplars": [{"traceId": trace_id, "asDouble": 2.5}],
    }
    metric = {"name": NAME, "gauge": {"dataPoints": [point]}}
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}


CASES = {
    "logs": Case(
        lambda served: served.logs_url,
        _log("ab" * 16),
        _log("not hex"),
        lambda served: [(line.message, line.trace_id) for line in served.logs()],
    ),
    "metrics": Case(
        lambda served: served.metrics_url,
        _metric("ab" * 16),
        _metric("not hex"),
        lambda served: [(point.name, point.value) for point in served.metric(NAME)],
    ),
}


def _status(answer: httpx.Response) -> Status:
    assert answer.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(answer.content)


@pytest.mark.parametrize("signal", list(CASES))
def test_bad_exports_are_refused_and_lose_nothing(served: Served, signal: str) -> None:
    case = CASES[signal]
    url = case.url(served)
    assert httpx.post(url, json=case.good, headers={"X-API-Key": INGEST_KEY}).is_success
    before = case.stored(served)
    assert len(before) == 1

    protobuf = {"Content-Type": "application/x-protobuf", "X-API-Key": INGEST_KEY}
    json_headers = {"Content-Type": "application/json", "X-API-Key": INGEST_KEY}

    answer = httpx.post(url, content=b"\xff\xff\xff\xff", headers=protobuf)
    assert answer.status_code == 400
    assert "not a valid OTLP protobuf message" in _status(answer).message

    answer = httpx.post(url, content=b"[1, 2", headers=json_headers)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["message"]

    answer = httpx.post(url, json=case.bad_id, headers={"X-API-Key": INGEST_KEY})
    assert answer.status_code == 400
    assert "traceId must be a hex string" in answer.json()["message"]

    answer = httpx.post(url, content=b"{}", headers={**json_headers, "Content-Type": "text/csv"})
    assert answer.status_code == 415

    answer = httpx.post(url, content=b" " * (LIMIT + 1), headers=json_headers)
    assert answer.status_code == 413

    bomb = gzip.compress(b"\0" * (4 * LIMIT))
    answer = httpx.post(url, content=bomb, headers={**protobuf, "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "once decompressed" in _status(answer).message

    for key in ("not-a-key", None):
        headers = {"Content-Type": "application/x-protobuf"} | ({"X-API-Key": key} if key else {})
        answer = httpx.post(url, content=b"", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert _status(answer).code == 16  # UNAUTHENTICATED

    assert case.stored(served) == before
