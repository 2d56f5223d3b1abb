"""W3C trace-context identifiers: 128-bit trace ids and 64-bit span ids, never zero.

A trace id starts with the epoch second it was made in (32 bits), then 96 random bits, as AWS
X-Ray's ids do: still unique, and the store's trace-id index then grows at its end instead of at
random places, which made inserting spans much cheaper once the index outgrew the page cache.

``random.getrandbits`` is used instead of ``os.urandom`` because ids must be unique, not secret,
and it is several times cheaper on the request path. The module-level generator is used because
CPython reseeds it in forked children, so worker processes never share a sequence.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from itertools import repeat
from random import getrandbits
from time import time

span_ids: Iterator[int] = filter(None, map(getrandbits, repeat(64)))
"""Endless random span ids, never zero. ``next(span_ids)`` runs entirely in C, which makes it
cheaper than a function call on the request path, and needs no lock: the GIL is held throughout."""


def new_trace_id(now: float | None = None) -> int:
    """A trace id made at ``now`` (epoch seconds; the current time if not given).

    Never zero, as the second is not (32 bits last until 2106).
    """
    return (int(time() if now is None else now) << 96) | getrandbits(96)


def new_span_id() -> int:
    return next(span_ids)


def new_batch_id() -> int:
    """A batch's id: random, positive, within a signed 64-bit column.

    From the operating system, not ``random``: made off the request path, where its cost does
    not matter, and it leaves the ``random`` module's state alone for the app (and tests that
    seed it) however many batches are built.
    """
    return secrets.randbits(63) or 1


def format_trace_id(trace_id: int) -> str:
    return f"{trace_id:032x}"


def format_span_id(span_id: int) -> str:
    return f"{span_id:016x}"
