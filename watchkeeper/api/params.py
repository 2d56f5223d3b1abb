"""Query parameters shared by the routes: time ranges, pagination and the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from watchkeeper.access.principal import current_principal
from watchkeeper.model.errors import QueryError
from watchkeeper.model.query import Scope, TimeRange

MAX_RANGE = timedelta(days=400)
MAX_PAGE = 1000


class RangeName(StrEnum):
    FIFTEEN_MINUTES = "15m"
    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"

    @property
    def duration(self) -> timedelta:
        amount, unit = int(self.value[:-1]), self.value[-1]
        return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(days=amount)
        )


def _iso_8601(value: object) -> datetime:
    # Only ISO 8601 text: pydantic alone would also take numbers as Unix times, which would
    # turn a typo into a range in 1970 instead of an error.
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date and time, such as 2026-11-23T10:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date and time, such as 2026-11-23T10:00:00Z, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def time_range(
    range_: Annotated[
        RangeName | None,
        Query(alias="range", description="A preset length, ending at 'to' (default now)."),
    ] = None,
    start: Annotated[
        IsoDateTime | None, Query(alias="from", description="Start (ISO 8601, UTC if no zone).")
    ] = None,
    end: Annotated[
        IsoDateTime | None, Query(alias="to", description="End (ISO 8601); defaults to now.")
    ] = None,
) -> TimeRange:
    """``from``/``to``, or ``range`` ending at ``to``; nothing at all means the last hour."""
    if range_ is not None and start is not None:
        raise QueryError("give either 'range' or 'from', not both")
    end = end or datetime.now(UTC)
    if start is None:
        try:
            start = end - (range_ or RangeName.HOUR).duration
        except OverflowError:
            raise QueryError("that range would start before year 1: give a later 'to'") from None
    if end - start > MAX_RANGE:
        raise QueryError(f"a time range may span at most {MAX_RANGE.days} days")
    return TimeRange(start, end)


NO_NUL = r"^[^\x00]*$"
"""Text parameters hold no NUL character: PostgreSQL cannot compare text with one, and no stored
name, id or message has one."""
CURSOR_PATTERN = r"^[A-Za-z0-9_=-]*$"


def text_query(
    max_length: int, min_length: int | None = None, description: str | None = None
) -> Any:
    """A text query parameter, bounded and without NUL characters (a 422 otherwise)."""
    return Query(
        min_length=min_length, max_length=max_length, pattern=NO_NUL, description=description
    )


def text_path(max_length: int, description: str | None = None) -> Any:
    """A text path parameter, bounded and without NUL characters (a 422 otherwise)."""
    return Path(max_length=max_length, pattern=NO_NUL, description=description)


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size (at most 1000).")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page.",
    ),
]


def current_scope(request: Request) -> Scope:
    """What the caller may see: their key's organisation or user, or everything."""
    return current_principal(request).scope()


def session_scope(
    scope: Annotated[Scope, Depends(current_scope)],
    org_id: Annotated[
        str | None,
        text_query(
            256,
            1,
            "The session's organisation: a session is its id within its organisation. Without "
            "it, the caller's own organisation, or (seeing every one) the session seen last.",
        ),
    ] = None,
) -> Scope | None:
    """The caller's scope within the session's organisation; ``None`` when it sees none of it."""
    return scope.within(org_id)
