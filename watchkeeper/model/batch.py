"""A batch: what the flush worker hands the store in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from watchkeeper.model.error_groups import ErrorDelta
from watchkeeper.model.events import (
    LogRecord,
    MetricPoint,
    SessionMark,
    Snapshot,
    Span,
    ValidationResult,
)
from watchkeeper.model.ids import new_batch_id
from watchkeeper.model.rollups import RollupDelta, RollupKey
from watchkeeper.model.sessions import SessionDelta, SessionKey


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
    sessions: Mapping[SessionKey, SessionDelta] = field(default_factory=dict)
    errors: Mapping[str, ErrorDelta] = field(default_factory=dict)
    """Error groups' occurrences by fingerprint hash (see ``model.error_groups``)."""
    batch_id: int = field(default_factory=new_batch_id)
    """Kept through retries and the spool: a store that took the batch once, its answer lost
    (a connection that died after the commit), skips it when it comes again."""

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
