"""The OTLP tests' server: an instrumented app, its keys and its store, and how to read it back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from watchkeeper.config import Settings
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.stored import StoredLog, StoredMetric, StoredSpan
from watchkeeper.runtime.runtime import Runtime
from watchkeeper.storage.factory import open_store

API_KEY = "otlp-test-api-key-0123456789"
INGEST_KEY = "otlp-test-ingest-key-0123456789"
START_NS = (int(time.time()) - 60) * 1_000_000_000
"""A minute ago, in whole seconds: inside the store's recent range, exact as a float."""
LIMIT = 1024 * 1024
"""A smaller body limit than the default, so the oversized bodies stay cheap to build."""


@dataclass
class Served:
    url: str
    settings: Settings
    runtime: Runtime

    @property
    def traces_url(self) -> str:
        return f"{self.url}/watchkeeper/v1/traces"

    @property
    def logs_url(self) -> str:
        return f"{self.url}/watchkeeper/v1/logs"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/watchkeeper/v1/metrics"

    def flush(self) -> None:
        assert self.runtime.recorder.flush(10.0)

    def stored(self) -> list[StoredSpan]:
        self.flush()
        store = open_store(self.settings)
        try:
            page = store.spans(_last_hour(), Scope.everything(), limit=1_000)
        finally:
            store.close()
        return page.items

    def trace(self, trace_id: int) -> list[StoredSpan]:
        return [span for span in self.stored() if span.trace_id == f"{trace_id:032x}"]

    def logs(self) -> list[StoredLog]:
        self.flush()
        store = open_store(self.settings)
        try:
            return store.logs(_last_hour(), Scope.everything(), 0, None, None, 1_000, None).items
        finally:
            store.close()

    def metric(self, name: str) -> list[StoredMetric]:
        self.flush()
        store = open_store(self.settings)
        try:
            return store.metrics(_last_hour(), Scope.everything(), name, 1_000)
        finally:
            store.close()

    def api(self, path: str, **params: Any) -> Any:
        """A GET of Watchkeeper's REST API with the API key, as the dashboard makes it."""
        self.flush()
        answer = httpx.get(
            f"{self.url}/watchkeeper/api/v1{path}",
            params=params,
            headers={"X-API-Key": API_KEY},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _last_hour() -> TimeRange:
    return TimeRange.last(timedelta(hours=1))


def otlp_json(signal: str, items: list[dict[str, Any]], scope: str = "manual") -> dict[str, Any]:
    """An OTLP JSON export request from service ``go-api``: ``signal`` is Spans, Logs or Metrics."""
    field = {"Spans": "spans", "Logs": "logRecords", "Metrics": "metrics"}[signal]
    return {
        f"resource{signal}": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "go-api"}}]
                },
                f"scope{signal}": [{"scope": {"name": scope}, field: items}],
            }
        ]
    }
