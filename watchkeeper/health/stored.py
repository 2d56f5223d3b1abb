"""Integrations judged from stored traffic, for readers of a store that record nothing themselves.

The same thresholds and grading as ``/health`` (:func:`~watchkeeper.health.traffic.judge_traffic`),
applied to the store's figures for the last five minutes: the API's integrations view, its live
feed and ``watchkeeper status`` judge every replica writing to the store, and all the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from watchkeeper.health.status import HealthStatus
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.health.traffic import judge_traffic
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.store import Queries
from watchkeeper.model.stored import NameSummary
from watchkeeper.recording.windows import WindowStats

JUDGED_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredJudgement:
    summary: NameSummary
    status: HealthStatus
    reasons: list[str]


def judge_stored_integrations(
    store: Queries, thresholds: ThresholdBook, scope: Scope
) -> list[StoredJudgement]:
    summaries = store.overview(TimeRange.last(JUDGED_WINDOW), scope, SpanKind.INTEGRATION)
    window = [_as_window(summary) for summary in summaries]
    services = judge_traffic(window, frozenset({SpanKind.INTEGRATION.value}), thresholds, {})
    judgements = []
    for summary in summaries:
        service = services.get(summary.name)
        checks = [check for group in service.checks.values() for check in group] if service else []
        reasons = [
            check.output for check in checks if check.output and check.status != HealthStatus.PASS
        ]
        status = service.status if service else HealthStatus.PASS
        judgements.append(StoredJudgement(summary, status, reasons))
    return judgements


def _as_window(summary: NameSummary) -> WindowStats:
    return WindowStats(
        kind=summary.kind,
        name=summary.name,
        window_seconds=int(JUDGED_WINDOW.total_seconds()),
        count=summary.count,
        errors=summary.errors,
        p50=summary.p50,
        p95=summary.p95,
        p99=summary.p99,
    )
