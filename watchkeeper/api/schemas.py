"""Response shapes that are the API's own; stored rows are served as the store's dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from watchkeeper.model.query import Page
from watchkeeper.model.stored import (
    NameSummary,
    StoredSession,
    StoredSnapshot,
    StoredSpan,
    StoredValidation,
)

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[T]) -> PageOut[T]:
        return cls(items=page.items, next_cursor=page.next_cursor)


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, str]] | None = None


class ErrorEnvelope(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (400, "The parameters are well-formed but make no sense together."),
        (401, "No API key, or not a valid one."),
        (404, "No such trace, session or resource."),
        (422, "A parameter has the wrong type or is out of bounds."),
    )
}

ACCESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    **{
        status: {"model": ErrorEnvelope, "description": description}
        for status, description in (
            (403, "The key's role or organisation does not allow this."),
            (429, "The key made more requests this minute than it may; see Retry-After."),
        )
    },
}


class Headline(BaseModel):
    """Overview figures for requests over the chosen range; latencies in seconds.

    ``requests_per_second`` and ``cost_per_hour`` are rates over the part of the range that
    holds data: ``covered_seconds``, from ``covered_from`` (the start of the first minute with a
    span recorded) to the range's end or now, whichever is earlier.
    """

    requests: int
    requests_per_second: float
    errors: int
    error_rate: float
    p50: float | None
    p95: float | None
    p99: float | None
    active_sessions: int
    cost: float
    cost_per_hour: float
    cost_unknown_calls: int
    covered_from: datetime | None
    covered_seconds: float


class NameFigures(BaseModel):
    kind: str
    name: str
    count: int
    errors: int
    error_rate: float
    p50: float | None
    p95: float | None
    p99: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    cost_unknown: int

    @classmethod
    def of(cls, summary: NameSummary) -> NameFigures:
        return cls(
            kind=summary.kind,
            name=summary.name,
            count=summary.count,
            errors=summary.errors,
            error_rate=summary.error_rate,
            p50=summary.p50,
            p95=summary.p95,
            p99=summary.p99,
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            cost=summary.cost,
            cost_unknown=summary.cost_unknown,
        )


class Overview(BaseModel):
    headline: Headline
    by_kind: dict[str, list[NameFigures]]


class IntegrationHealth(BaseModel):
    name: str
    status: str
    figures: NameFigures
    reasons: list[str]


class SpanNode(BaseModel):
    span: StoredSpan
    children: list[SpanNode]


class TraceOut(BaseModel):
    trace_id: str
    roots: list[SpanNode]
    span_count: int


class SessionTimeline(BaseModel):
    session: StoredSession
    roots: list[SpanNode]
    snapshots: list[StoredSnapshot]
    validations: list[StoredValidation]
    truncated: bool


def span_tree(spans: list[StoredSpan]) -> list[SpanNode]:
    """Parent/child tree by span ids; a span whose parent is absent becomes a root."""
    nodes = {span.span_id: SpanNode(span=span, children=[]) for span in spans}
    roots: list[SpanNode] = []
    for span in spans:
        parent = nodes.get(span.parent_id) if span.parent_id else None
        (parent.children if parent is not None else roots).append(nodes[span.span_id])
    return roots
