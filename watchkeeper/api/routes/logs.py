"""Log search, and the logs of one trace or one session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from watchkeeper.api.context import ApiContext
from watchkeeper.api.params import (
    MAX_RANGE,
    Cursor,
    Limit,
    current_scope,
    session_scope,
    text_path,
    text_query,
    time_range,
)
from watchkeeper.api.schemas import PageOut
from watchkeeper.model.events import LogLevel
from watchkeeper.model.query import LogFilter, Scope, TimeRange
from watchkeeper.model.stored import StoredLog

TRACE_ID = "^[0-9a-fA-F]{32}$"
GROUP_ID = "^[0-9a-f]{32}$"
Level = Annotated[
    LogLevel,
    Query(
        description="The lowest level shown, as a number: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR…"
    ),
]


def everything_retained() -> TimeRange:
    """The longest range the API takes, ending a little ahead (a sender's clock may be fast):
    a trace's or a session's logs are found by their index, whatever their age."""
    now = datetime.now(UTC)
    return TimeRange(now - MAX_RANGE + timedelta(days=1), now + timedelta(days=1))


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["logs"])

    @api.get(
        "/logs",
        response_model=PageOut[StoredLog],
        summary="Log search, newest first: full-text words, a substring, and exact filters",
    )
    def logs(
        window: Annotated[TimeRange, Depends(time_range)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        level: Level = LogLevel.DEBUG,
        q: Annotated[
            str | None,
            text_query(
                512,
                1,
                "Words (letters and digits), each beginning a word of the message, "
                "attributes or exception, in any order and case.",
            ),
        ] = None,
        text: Annotated[
            str | None, text_query(512, description="A substring of the message, any case.")
        ] = None,
        trace_id: Annotated[str | None, Query(pattern=TRACE_ID)] = None,
        logger: Annotated[str | None, text_query(512, 1)] = None,
        service: Annotated[str | None, text_query(256, 1)] = None,
        user_id: Annotated[str | None, text_query(256, 1)] = None,
        session_id: Annotated[str | None, text_query(256, 1)] = None,
        error_group: Annotated[str | None, Query(pattern=GROUP_ID)] = None,
        source: Annotated[str | None, text_query(4096, 1)] = None,
    ) -> PageOut[StoredLog]:
        where = LogFilter(q, logger, service, user_id, session_id, error_group, source)
        return PageOut.of(
            context.store.logs(
                window, scope, int(level), text, trace_id, limit, cursor, where=where
            )
        )

    @api.get(
        "/traces/{trace_id}/logs",
        response_model=PageOut[StoredLog],
        summary="The logs written during one trace, newest first",
    )
    def trace_logs(
        trace_id: Annotated[str, Path(pattern=TRACE_ID)],
        scope: Annotated[Scope, Depends(current_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        level: Level = LogLevel.DEBUG,
    ) -> PageOut[StoredLog]:
        return PageOut.of(
            context.store.logs(
                everything_retained(), scope, int(level), None, trace_id, limit, cursor
            )
        )

    @api.get(
        "/sessions/{session_id}/logs",
        response_model=PageOut[StoredLog],
        summary="The logs written during one session, newest first",
    )
    def session_logs(
        session_id: Annotated[str, text_path(256)],
        scope: Annotated[Scope | None, Depends(session_scope)],
        limit: Limit = 100,
        cursor: Cursor = None,
        level: Level = LogLevel.DEBUG,
    ) -> PageOut[StoredLog]:
        """Without ``org_id``, a caller who sees every organisation gets the logs of the id in
        all of them."""
        if scope is None:
            return PageOut(items=[], next_cursor=None)
        where = LogFilter(session_id=session_id)
        return PageOut.of(
            context.store.logs(
                everything_retained(), scope, int(level), None, None, limit, cursor, where=where
            )
        )

    return api
