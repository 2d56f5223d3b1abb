"""Raw spans, the trace list and one trace as a tree, sessions and one session's timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from watchkeeper.access.audit import AuditAction, record
from watchkeeper.api.context import ApiContext
from watchkeeper.api.errors import NotFound
from watchkeeper.api.params import (
    Cursor,
    Limit,
    current_scope,
    session_scope,
    text_path,
    text_query,
    time_range,
)
from watchkeeper.api.schemas import PageOut, SessionTimeline, TraceOut, span_tree
from watchkeeper.model.events import SpanKind, SpanStatus
from watchkeeper.model.query import Scope, SpanFilter, TimeRange, TraceFilter
from watchkeeper.model.stored import StoredSession, StoredSpan, TraceSummary

TRACE_ID = "^[0-9a-f]{32}$"
Name = Annotated[str | None, text_query(512)]
Identity = Annotated[str | None, text_query(256)]


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["traces and sessions"])

    @api.get("/spans", response_model=PageOut[StoredSpan], summary="Raw spans, newest first")
    def spans(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        kind: SpanKind | None = None,
        name: Name = None,
        status: SpanStatus | None = None,
        user_id: Identity = None,
        org_id: Identity = None,
        session_id: Identity = None,
        trace_id: Annotated[str | None, Query(pattern=TRACE_ID)] = None,
    ) -> PageOut[StoredSpan]:
        span_filter = SpanFilter(kind, name, status, user_id, org_id, session_id, trace_id)
        return PageOut.of(context.store.spans(window, scope, span_filter, limit, cursor))

    @api.get(
        "/traces",
        response_model=PageOut[TraceSummary],
        summary="Traces, newest first, by their entry span (a request, or a span without parent)",
    )
    def traces(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        trace_id: Annotated[
            str | None,
            Query(pattern="^[0-9a-fA-F]{32}$", description="A whole trace id (32 hex digits)."),
        ] = None,
        user_id: Annotated[
            str | None, text_query(256, 1, "The entry span's user id, exactly.")
        ] = None,
        session_id: Annotated[
            str | None, text_query(256, 1, "The entry span's session id, exactly.")
        ] = None,
        kind: Annotated[
            SpanKind | None, Query(description="Traces holding a span of this kind…")
        ] = None,
        name: Annotated[str | None, text_query(512, 1, "…with this name…")] = None,
        errors_only: Annotated[bool, Query(description="…that failed.")] = False,
    ) -> PageOut[TraceSummary]:
        trace_filter = TraceFilter(
            trace_id and trace_id.lower(), user_id, session_id, kind, name, errors_only
        )
        return PageOut.of(context.store.traces(window, scope, trace_filter, limit, cursor))

    @api.get("/traces/{trace_id}", response_model=TraceOut, summary="One trace as a span tree")
    def trace(
        trace_id: Annotated[
            str, Path(pattern=TRACE_ID, description="32 lowercase hexadecimal characters.")
        ],
        scope: Annotated[Scope, Depends(current_scope)],
    ) -> TraceOut:
        found = context.store.trace(trace_id, scope)
        if not found:
            raise NotFound(f"no trace {trace_id} is stored (it may be older than the retention)")
        return TraceOut(trace_id=trace_id, roots=span_tree(found), span_count=len(found))

    @api.get(
        "/sessions", response_model=PageOut[StoredSession], summary="Sessions, most recent first"
    )
    def sessions(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        search: Annotated[
            str | None, text_query(256, description="Session or user id, or a prefix.")
        ] = None,
    ) -> PageOut[StoredSession]:
        return PageOut.of(context.store.sessions(window, scope, search, limit, cursor))

    @api.get(
        "/sessions/{session_id}",
        response_model=SessionTimeline,
        summary="One session: its spans as a tree, snapshots and validation results",
    )
    def session(
        session_id: Annotated[str, text_path(256)],
        scope: Annotated[Scope | None, Depends(session_scope)],
        request: Request,
    ) -> SessionTimeline:
        detail = None if scope is None else context.store.session(session_id, scope)
        if detail is None:
            raise NotFound(f"no session {session_id!r} is stored")
        # A session's snapshots are what its user saw and said: reading them is audited.
        record(request, AuditAction.SENSITIVE_READ, f"session:{session_id}")
        return SessionTimeline(
            session=detail.session,
            roots=span_tree(detail.spans),
            snapshots=detail.snapshots,
            validations=detail.validations,
            truncated=detail.truncated,
        )

    return api
