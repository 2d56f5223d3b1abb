"""A rule's signal over the last day, and where its thresholds would have fired.

Each point measures the signal as an evaluation at that moment would have (the same rollup
queries, the window ending there), so the preview shows what the rule will do, not an
approximation of it. Signals of the moment (memory, CPU, disk, queue) have no past: one point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.rules import Rule, SignalKind
from watchkeeper.alerts.signals import SignalContext, measure
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import Settings
from watchkeeper.model.store import Queries

PREVIEW_SPAN = timedelta(days=1)
PREVIEW_POINTS = 96
_OF_THE_MOMENT = frozenset(
    {SignalKind.MEMORY, SignalKind.SYSTEM_CPU, SignalKind.DISK, SignalKind.QUEUE_DEPTH}
)


@dataclass(frozen=True, slots=True)
class PreviewPoint:
    time: datetime
    labels: dict[str, str]
    value: float | None
    level: Severity | None


def preview(
    rule: Rule, store: Queries, alerts: AlertStore, settings: Settings, now: datetime
) -> list[PreviewPoint]:
    if rule.signal.kind in _OF_THE_MOMENT:
        moments = [now]
    else:
        step = PREVIEW_SPAN / PREVIEW_POINTS
        moments = [now - PREVIEW_SPAN + step * (index + 1) for index in range(PREVIEW_POINTS)]
    points = []
    for moment in moments:
        context = SignalContext(store, alerts, settings, moment)
        for sample in measure(rule, context):
            level = None if sample.value is None else rule.level(sample.value)
            points.append(PreviewPoint(moment, sample.labels, sample.value, level))
    return points
