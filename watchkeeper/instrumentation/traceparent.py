"""W3C Trace Context: read an incoming ``traceparent``, write an outgoing one."""

from __future__ import annotations

import re

_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def parse_traceparent(value: bytes | str | None) -> tuple[int, int]:
    """(trace id, parent span id), or (0, 0) for a missing or invalid header: a new trace."""
    if not value:
        return 0, 0
    raw = value.encode("latin-1") if isinstance(value, str) else value
    match = _TRACEPARENT.match(raw.strip())
    if match is None:
        return 0, 0
    trace_id, parent_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not parent_id:  # all-zero ids are invalid by the specification
        return 0, 0
    return trace_id, parent_id


def format_traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"
