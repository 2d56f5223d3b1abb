"""W3C trace-context identifiers: 128-bit trace ids and 64-bit span ids, never zero.

``random.getrandbits`` is used instead of ``os.urandom`` because ids must be unique, not secret,
and it is several times cheaper on the request path. The module-level generator is used because
CPython reseeds it in forked children, so worker processes never share a sequence.
"""

from __future__ import annotations

from random import getrandbits


def new_trace_id() -> int:
    return getrandbits(128) or 1


def new_span_id() -> int:
    return getrandbits(64) or 1


def format_trace_id(trace_id: int) -> str:
    return f"{trace_id:032x}"


def format_span_id(span_id: int) -> str:
    return f"{span_id:016x}"
