"""Per-minute and per-hour rollups built from a batch of spans, off the request path.

The flush worker turns each batch into additive deltas keyed by :class:`RollupKey`; a store
merges them into what it holds (sums add, sketches merge), so several processes can write the same
keys and a query over a month reads hours, not events.

Which dimensions get which levels is a cost decision: per (kind, name) and per organisation and
model we keep minutes and hours with latency sketches; per user only hourly sums per kind, across
names (users are many, and what matters per user is usage and cost).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import repeat
from operator import attrgetter, eq
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.model.events import Span, SpanStatus, has_usage
from watchkeeper.model.sketch import Indexes, LatencySketch, bucket_indexes

MINUTE = 60
HOUR = 3600


class Level(StrEnum):
    MINUTE = "m"
    HOUR = "h"

    @property
    def seconds(self) -> int:
        return MINUTE if self is Level.MINUTE else HOUR


class Dimension(StrEnum):
    """What a rollup row is broken down by besides (kind, name); ``NONE`` is the total."""

    NONE = ""
    ORG = "org"
    USER = "user"
    MODEL = "model"


class RollupKey(NamedTuple):
    level: Level
    bucket: int
    kind: str
    name: str
    dimension: Dimension
    value: str


@dataclass(slots=True)
class RollupDelta:
    """Sums for one key; ``sketch`` is ``None`` for dimensions kept without latency detail."""

    count: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0
    duration_sum: float = 0.0
    sketch: LatencySketch | None = None

    def add_usage(self, span: Span) -> None:
        """Add a span's tokens and cost; tokens without a price count as cost unknown."""
        self.input_tokens += span.input_tokens or 0
        self.output_tokens += span.output_tokens or 0
        if span.cost is not None:
            self.cost += span.cost
        elif span.input_tokens or span.output_tokens:
            self.cost_unknown += 1

    def copy(self) -> RollupDelta:
        copied = replace(self, sketch=None)
        if self.sketch is not None:
            copied.sketch = LatencySketch()
            copied.sketch.merge(self.sketch)
        return copied

    def merge(self, other: RollupDelta) -> None:
        """Add ``other`` into this delta (used by stores when a key already has a row)."""
        self.count += other.count
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost
        self.cost_unknown += other.cost_unknown
        self.duration_sum += other.duration_sum
        if other.sketch is not None:
            if self.sketch is None:
                self.sketch = LatencySketch()
            self.sketch.merge(other.sketch)


_NONE, _ORG, _USER, _MODEL = Dimension.NONE, Dimension.ORG, Dimension.USER, Dimension.MODEL
_M, _H = Level.MINUTE, Level.HOUR
_ERROR = SpanStatus.ERROR
_duration = attrgetter("duration")
_status = attrgetter("status")


def build_rollups(spans: Iterable[Span]) -> dict[RollupKey, RollupDelta]:
    """Group a batch of spans into rollup deltas, bucketed by the minute/hour the span started.

    One pass numbers the minute keys each span belongs to, and its user's hour key, as plain
    tuples (a key object per span and dimension would dominate the worker's time), recording
    only integers. Counts, errors, durations and latency sketches are then summed per key by
    numpy, in span order, so every sum rounds exactly as adding the spans one by one would; the
    few spans with usage (the AI calls) are added one by one. Hours are the merge of their
    minutes rather than a second pass over spans.
    """
    spans = list(spans)
    minute_keys: dict[tuple[int, str, str, Dimension, str], int] = {}
    user_keys: dict[tuple[int, str, str], int] = {}
    minute_of: list[int] = []  # the minute key of each (span, key) pair…
    minute_span: list[int] = []  # …and its span
    user_of: list[int] = []
    user_span: list[int] = []
    usage: list[tuple[Span, int, int, int, int]] = []
    for position, span in enumerate(spans):
        minute = int(span.start) // MINUTE * MINUTE
        # _value_ is the member's plain attribute; .value goes through a descriptor per call.
        kind, name = span.kind._value_, span.name
        total = minute_keys.setdefault((minute, kind, name, _NONE, ""), len(minute_keys))
        minute_of.append(total)
        minute_span.append(position)
        org = model = user = -1
        if span.org_id:
            org = minute_keys.setdefault((minute, kind, name, _ORG, span.org_id), len(minute_keys))
            minute_of.append(org)
            minute_span.append(position)
        if span.model:
            model = minute_keys.setdefault(
                (minute, kind, name, _MODEL, span.model), len(minute_keys)
            )
            minute_of.append(model)
            minute_span.append(position)
        if span.user_id:
            # Per user only hourly sums across names: usage and cost per user is what they serve,
            # and a key per (name, user) would outnumber the spans themselves.
            hour = minute - minute % HOUR
            user = user_keys.setdefault((hour, kind, span.user_id), len(user_keys))
            user_of.append(user)
            user_span.append(position)
        if has_usage(span):
            usage.append((span, total, org, model, user))
    durations = np.fromiter(map(_duration, spans), np.float64, len(spans))
    errors = np.fromiter(map(eq, map(_status, spans), repeat(_ERROR)), np.float64, len(spans))
    indexes = bucket_indexes(durations)
    minutes = _deltas(minute_of, minute_span, len(minute_keys), durations, errors, indexes)
    users = _deltas(user_of, user_span, len(user_keys), durations, errors, None)
    for span, *numbers, user in usage:
        for number in numbers:
            if number >= 0:
                minutes[number].add_usage(span)
        if user >= 0:
            users[user].add_usage(span)
    deltas: dict[RollupKey, RollupDelta] = {}
    for (minute, kind, name, dimension, value), delta in zip(minute_keys, minutes, strict=True):
        deltas[RollupKey(_M, minute, kind, name, dimension, value)] = delta
        hour_key = RollupKey(_H, minute - minute % HOUR, kind, name, dimension, value)
        hourly = deltas.get(hour_key)
        if hourly is None:
            deltas[hour_key] = delta.copy()
        else:
            hourly.merge(delta)
    for (hour, kind, user_id), delta in zip(user_keys, users, strict=True):
        deltas[RollupKey(_H, hour, kind, "", _USER, user_id)] = delta
    return deltas


def _deltas(
    keys: list[int],
    members: list[int],
    count: int,
    durations: npt.NDArray[np.float64],
    errors: npt.NDArray[np.float64],
    indexes: Indexes | None,
) -> list[RollupDelta]:
    """One delta per key ``0 … count - 1`` of the spans ``members[i]`` in key ``keys[i]``,
    with a latency sketch when ``indexes`` (every span's bucket) is given."""
    if not count:
        return []
    key_array = np.array(keys, dtype=np.int64)
    member_array = np.array(members, dtype=np.int64)
    # bincount adds each key's weights in the order given: span order, as the old sums were.
    counts = np.bincount(key_array, minlength=count).tolist()
    error_counts = np.bincount(key_array, errors[member_array], count).astype(np.int64).tolist()
    sums = np.bincount(key_array, durations[member_array], count).tolist()
    sketches: list[LatencySketch] | list[None] = (
        [None] * count
        if indexes is None
        else LatencySketch.of_groups(key_array, indexes[member_array], count)
    )
    return [
        RollupDelta(spans, failed, duration_sum=total, sketch=sketch)
        for spans, failed, total, sketch in zip(counts, error_counts, sums, sketches, strict=True)
    ]
