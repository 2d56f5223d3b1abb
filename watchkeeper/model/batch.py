"""A batch: what the flush worker hands the store in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from watchkeeper.model.events import (
    LogRecord,
    MetricPoint,
    SessionMark,
    Snapshot,
    Span,
    ValidationResult,
)
from watchkeeper.model.rollups import RollupDelta, RollupKey
from watchkeeper.model.sessions import SessionDelta


@dataclass(frozen=True, slots=True)
class Batch:
    """One flush: written in a single transaction, so it is stored whole or not at all."""

    service: str
    instance: str
    spans: Sequence[Span] = ()
    logs: Sequence[LogRecord] = ()
    metrics: Sequence[MetricPoint] = ()
    snapshots: Sequence[Snapshot] = ()
    validations: Sequence[ValidationResult] = ()
    session_marks: Sequence[SessionMark] = ()
    rollups: Mapping[RollupKey, RollupDelta] = field(default_factory=dict)
    sessions: Mapping[str, SessionDelta] = field(default_factory=dict)

    def __len__(self) -> int:
        """Events in the batch (what the recorder counts as flushed)."""
        return (
            len(self.spans)
            + len(self.logs)
            + len(self.metrics)
            + len(self.snapshots)
            + len(self.validations)
            + len(self.session_marks)
        )
