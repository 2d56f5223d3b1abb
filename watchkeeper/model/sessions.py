"""Per-session totals built from a batch of spans and session marks, merged by the store.

A session (a conversation, a guidance session, a voice call) exists as soon as a span carries
its id; explicit marks add a start and an end. A session is its id within its organisation
(:class:`SessionKey`): two organisations' equal ids are two sessions, never one. Deltas are
additive (min/max for times), so several processes can update one session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import add, attrgetter
from typing import NamedTuple

from watchkeeper.model.events import SessionMark, Span, error_count, has_usage


class SessionKey(NamedTuple):
    session_id: str
    org_id: str | None
    """``None``: the app has no organisations, or the session's spans carried none."""


@dataclass(slots=True)
class SessionDelta:
    first_seen: float
    last_seen: float
    user_id: str | None = None
    spans: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    ended_at: float | None = None

    def merge(self, other: SessionDelta) -> None:
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.user_id = self.user_id or other.user_id
        self.spans += other.spans
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost
        if other.ended_at is not None:
            self.ended_at = max(self.ended_at or other.ended_at, other.ended_at)


def build_sessions(
    spans: Iterable[Span], marks: Iterable[SessionMark] = ()
) -> dict[SessionKey, SessionDelta]:
    grouped: dict[SessionKey, list[Span]] = defaultdict(list)
    for span in spans:
        if span.session_id:
            grouped[SessionKey(span.session_id, span.org_id)].append(span)
    # Per session, C-level passes over its spans: this runs on the flush worker for every span.
    deltas = {key: _delta(members) for key, members in grouped.items()}
    for mark in marks:
        # A mark joins the session of its own organisation (see ``start_session``).
        key = SessionKey(mark.session_id, mark.org_id)
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = SessionDelta(mark.time, mark.time)
        delta.merge(
            SessionDelta(
                mark.time,
                mark.time,
                user_id=mark.user_id,
                ended_at=mark.time if mark.ended else None,
            )
        )
    return deltas


_start = attrgetter("start")
_duration = attrgetter("duration")


def _delta(spans: list[Span]) -> SessionDelta:
    delta = SessionDelta(
        first_seen=min(map(_start, spans)),
        last_seen=max(map(add, map(_start, spans), map(_duration, spans))),
        user_id=next(filter(None, map(attrgetter("user_id"), spans)), None),
        spans=len(spans),
        errors=error_count(spans),
    )
    for span in filter(has_usage, spans):
        delta.input_tokens += span.input_tokens or 0
        delta.output_tokens += span.output_tokens or 0
        delta.cost += span.cost or 0.0
    return delta
