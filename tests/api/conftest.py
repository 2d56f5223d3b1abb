"""A standalone Watchkeeper server over a real SQLite store filled through the real write path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.stores import batch_of, span
from watchkeeper.config import Settings, load_settings
from watchkeeper.model.events import (
    LogLevel,
    LogRecord,
    MetricKind,
    MetricPoint,
    SessionMark,
    Severity,
    Snapshot,
    SpanKind,
    ValidationResult,
)
from watchkeeper.runtime.runtime import create_app
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

API_KEY = "api-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(sqlite_path=tmp_path / "api.db", api_keys=[API_KEY])


@pytest.fixture
def store(settings: Settings) -> Iterator[SqlStore]:
    store = open_store(settings)
    yield store
    store.close()


def fill(store: SqlStore, now: float) -> dict[str, str]:
    """Two sessions of guidance requests with integration, tool and agent children."""
    spans = []
    ids: dict[str, str] = {}
    for index in range(60):
        start = now - 300 + index * 4
        session = f"s-{index % 2}"
        request = span(
            start,
            0.4,
            name="POST /api/guidance",
            user_id=f"u-{index % 3}",
            org_id="acme",
            session_id=session,
            trace_id=1000 + index,
            span_id=5000 + index,
            error=index % 10 == 0,
            error_type="TimeoutError" if index % 10 == 0 else None,
            error_message="chart service timed out" if index % 10 == 0 else None,
        )
        llm = span(
            start + 0.1,
            0.25,
            kind=SpanKind.INTEGRATION,
            name="openai",
            operation="chat",
            trace_id=1000 + index,
            span_id=9000 + index,
            parent_id=5000 + index,
            session_id=session,
            user_id=f"u-{index % 3}",
            org_id="acme",
            model="gpt-4o-mini",
            input_tokens=120,
            output_tokens=80,
            cost=0.0004,
        )
        tool = span(
            start + 0.12,
            0.05,
            kind=SpanKind.TOOL,
            name="search_docs",
            trace_id=1000 + index,
            span_id=13000 + index,
            parent_id=9000 + index,
            session_id=session,
            user_id=f"u-{index % 3}",  # a child span takes its parent's identity
            org_id="acme",
        )
        spans += [request, llm, tool]
    ids["trace"] = f"{1000:032x}"
    snapshots = [
        Snapshot(now - 590, "question", {"text": "Will I move?"}, 1000, 5000, "s-0", "u-0", "acme")
    ]
    validations = [
        ValidationResult(
            now - 580,
            "minimum_score",
            "retrieval",
            False,
            0.41,
            ">= 0.65",
            Severity.ERROR,
            "0.41 is below 0.65",
            1000,
            5000,
            "s-0",
            "u-0",
            "acme",
        ),
        ValidationResult(
            now - 570,
            "minimum_score",
            "retrieval",
            True,
            0.8,
            ">= 0.65",
            Severity.ERROR,
            "",
            1002,
            5002,
            "s-0",
            "u-2",
            "acme",
        ),
    ]
    logs = [LogRecord(now - 560, int(LogLevel.WARNING), "app", "chart slow: 100% of budget")]
    metrics = [MetricPoint(now - 550, "credits_used", MetricKind.COUNTER, 3, "acme")]
    marks = [SessionMark(now - 10, "s-1", True, org_id="acme")]
    store.write(
        batch_of(
            spans,
            snapshots=snapshots,
            validations=validations,
            logs=logs,
            metrics=metrics,
            session_marks=marks,
        )
    )
    return ids


@pytest.fixture
def client(settings: Settings, store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store)) as test_client:
        yield test_client
