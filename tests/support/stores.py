"""Builders shared by the storage tests (importable by spawned writer processes too)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from watchkeeper.model.batch import Batch
from watchkeeper.model.error_groups import build_error_deltas
from watchkeeper.model.events import Span, SpanKind, SpanStatus
from watchkeeper.model.ids import new_span_id, new_trace_id
from watchkeeper.model.rollups import build_rollups
from watchkeeper.model.sessions import build_sessions
from watchkeeper.storage.engine import create_store_engine

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 86_400  # midnight UTC, so hours are easy to reason about


@dataclass(frozen=True)
class StoreTarget:
    """A database URL, plus the PostgreSQL schema to work in (picklable for child processes)."""

    url: str
    schema: str | None = None

    def engine(self) -> Engine:
        """An engine working in ``schema``, the way Watchkeeper opens its configured store."""
        return create_store_engine(self.url, schema=self.schema)


def span(
    start: float,
    duration: float = 0.1,
    *,
    kind: SpanKind = SpanKind.REQUEST,
    name: str = "GET /items",
    error: bool = False,
    trace_id: int | None = None,
    span_id: int | None = None,
    **fields: object,
) -> Span:
    return Span(
        kind,
        name,
        start,
        duration,
        trace_id or new_trace_id(),
        span_id or new_span_id(),
        status=SpanStatus.ERROR if error else SpanStatus.OK,
        **fields,  # type: ignore[arg-type]
    )


def batch_of(spans: Iterable[Span], **parts: Any) -> Batch:
    """A batch as the flush worker builds it: the spans plus their rollups, session totals and
    error groups."""
    spans = list(spans)
    sessions = build_sessions(spans, parts.get("session_marks", ()))
    try:
        errors = build_error_deltas(spans, parts.get("logs", ()))
    except Exception:  # a malformed event: the flush worker writes its batch without groups
        errors = {}
    return Batch(
        "api",
        "host-1",
        spans=spans,
        rollups=build_rollups(spans),
        sessions=sessions,
        errors=errors,
        **parts,
    )
