"""Per-minute and per-hour rollups built from a batch of spans, off the request path.

The flush worker turns each batch into additive deltas keyed by :class:`RollupKey`; a store
merges them into what it holds (sums add, sketches merge), so several processes can write the same
keys and a query over a month reads hours, not events.

Which dimensions get which levels is a cost decision: per (kind, name) and per organisation and
model we keep minutes and hours with latency sketches; per user only hourly sums per kind, across
names (users are many, and what matters per user is usage and cost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

from watchkeeper.model.events import Span, error_count, has_usage
from watchkeeper.model.sketch import LatencySketch

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

    @classmethod
    def of(cls, spans: list[Span], sketched: bool) -> RollupDelta:
        durations = list(map(_duration, spans))
        delta = cls(
            count=len(spans),
            errors=error_count(spans),
            duration_sum=sum(durations),
        )
        # Few spans carry usage (the AI calls), so find those before looking at three fields.
        for span in filter(has_usage, spans):
            delta.input_tokens += span.input_tokens or 0
            delta.output_tokens += span.output_tokens or 0
            if span.cost is not None:
                delta.cost += span.cost
            elif span.input_tokens or span.output_tokens:
                delta.cost_unknown += 1
        if sketched:
            delta.sketch = LatencySketch()
            delta.sketch.add_many(durations)
        return delta

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
_duration = attrgetter("duration")


def build_rollups(spans: Iterable[Span]) -> dict[RollupKey, RollupDelta]:
    """Group a batch of spans into rollup deltas, bucketed by the minute/hour the span started.

    One pass appends each span to the lists of the minute keys it belongs to (plain tuples:
    building a key object per span and dimension would dominate the worker's time); each list is
    summed once, and hours are the merge of their minutes rather than a second pass over spans.
    """
    minutes: dict[tuple[int, str, str, Dimension, str], list[Span]] = defaultdict(list)
    users: dict[tuple[int, str, str], list[Span]] = defaultdict(list)
    for span in spans:
        minute = int(span.start) // MINUTE * MINUTE
        # _value_ is the member's plain attribute; .value goes through a descriptor per call.
        kind, name = span.kind._value_, span.name
        minutes[(minute, kind, name, _NONE, "")].append(span)
        if span.org_id:
            minutes[(minute, kind, name, _ORG, span.org_id)].append(span)
        if span.model:
            minutes[(minute, kind, name, _MODEL, span.model)].append(span)
        if span.user_id:
            # Per user only hourly sums across names: usage and cost per user is what they serve,
            # and a key per (name, user) would outnumber the spans themselves.
            users[(minute - minute % HOUR, kind, span.user_id)].append(span)
    deltas: dict[RollupKey, RollupDelta] = {}
    for (minute, kind, name, dimension, value), members in minutes.items():
        delta = deltas[RollupKey(_M, minute, kind, name, dimension, value)] = RollupDelta.of(
            members, sketched=True
        )
        hour_key = RollupKey(_H, minute - minute % HOUR, kind, name, dimension, value)
        hourly = deltas.get(hour_key)
        if hourly is None:
            deltas[hour_key] = delta.copy()
        else:
            hourly.merge(delta)
    for (hour, kind, user_id), members in users.items():
        deltas[RollupKey(_H, hour, kind, "", _USER, user_id)] = RollupDelta.of(
            members, sketched=False
        )
    return deltas
