"""Signals: what a rule measures, computed for one evaluation from the store and the process.

Span figures come from the rollups through the store's query layer (``overview``,
``kind_totals``, ``usage``), so a cycle's cost grows with names and minutes, never with spans;
one cycle's context caches each query, so a hundred rules over the same window read it once.
Adding a signal is one function and one :func:`register` call.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from watchkeeper.alerts.rules import BudgetPeriod, GroupBy, Rule, Signal, SignalKind
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import Settings
from watchkeeper.health.circuits import CircuitState
from watchkeeper.health.status import HealthStatus
from watchkeeper.health.thresholds import ThresholdBook
from watchkeeper.health.traffic import judge_traffic
from watchkeeper.model.error_groups import ErrorFlag
from watchkeeper.model.events import SpanKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.model.rollups import Dimension
from watchkeeper.model.store import Queries
from watchkeeper.model.stored import NameSummary, UsageRow
from watchkeeper.recording.attributes import CIRCUIT_METRIC
from watchkeeper.recording.stats import DROPPED_METRIC, StatsSnapshot
from watchkeeper.recording.windows import WindowStats

CIRCUIT_LOOKBACK = timedelta(days=1)
"""How far back a breaker's last transition is looked for: its state holds until the next one."""
HEALTH_VALUES = {HealthStatus.PASS: 0.0, HealthStatus.WARN: 1.0, HealthStatus.FAIL: 2.0}
CIRCUIT_VALUES = {CircuitState.CLOSED: 0.0, CircuitState.HALF_OPEN: 1.0, CircuitState.OPEN: 2.0}


@dataclass(frozen=True, slots=True)
class Sample:
    """One label set's value; ``None``: the signal has no data for it."""

    labels: dict[str, str]
    value: float | None


@dataclass
class SignalContext:
    """What signals read during one cycle, with that cycle's query cache."""

    store: Queries
    alerts: AlertStore
    settings: Settings
    now: datetime
    recorder_stats: Callable[[], StatsSnapshot] | None = None
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def window(self, seconds: int) -> TimeRange:
        return TimeRange(self.now - timedelta(seconds=seconds), self.now)

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def overview(self, seconds: int, scope: Scope, kind: SpanKind) -> list[NameSummary]:
        result: list[NameSummary] = self.cached(
            ("overview", seconds, scope, kind),
            lambda: self.store.overview(self.window(seconds), scope, kind),
        )
        return result

    def kind_totals(self, time_range: TimeRange, scope: Scope) -> list[NameSummary]:
        result: list[NameSummary] = self.cached(
            ("kinds", time_range, scope), lambda: self.store.kind_totals(time_range, scope)
        )
        return result

    def models(self, seconds: int, scope: Scope) -> list[UsageRow]:
        result: list[UsageRow] = self.cached(
            ("models", seconds, scope),
            lambda: self.store.usage(self.window(seconds), scope, Dimension.MODEL, 1000),
        )
        return result


SignalFunction = Callable[[Rule, SignalContext], list[Sample]]
_SIGNALS: dict[SignalKind, SignalFunction] = {}


def register(kind: SignalKind, function: SignalFunction) -> None:
    _SIGNALS[kind] = function


def measure(rule: Rule, context: SignalContext) -> list[Sample]:
    """The rule's samples now; an empty list is no data at all."""
    return _SIGNALS[rule.signal.kind](rule, context)


def _scope(signal: Signal) -> Scope:
    return Scope(org_id=signal.organisation, user_id=signal.user)


def _span_kind(signal: Signal) -> SpanKind:
    if signal.queue is not None or signal.group_by is GroupBy.QUEUE:
        return SpanKind.QUEUE
    if signal.integration is not None or signal.group_by is GroupBy.INTEGRATION:
        return SpanKind.INTEGRATION
    return SpanKind.REQUEST


_NAMED_BY = {SpanKind.QUEUE: "queue", SpanKind.INTEGRATION: "integration"}
"""The label (and the signal's field) naming a span of each kind; requests' is the route."""


def _summaries(rule: Rule, context: SignalContext) -> list[tuple[dict[str, str], NameSummary]]:
    """The span summaries a rule reads, with their labels: one name, each name, or the total."""
    signal = rule.signal
    kind = _span_kind(signal)
    label = _NAMED_BY.get(kind, "route")
    wanted: str | None = getattr(signal, label)
    scope = _scope(signal)
    by_name = (GroupBy.ROUTE, GroupBy.INTEGRATION, GroupBy.QUEUE)
    if wanted is not None or signal.group_by in by_name:
        rows = context.overview(rule.window_seconds, scope, kind)
        return [({label: row.name}, row) for row in rows if wanted is None or row.name == wanted]
    totals = context.kind_totals(context.window(rule.window_seconds), scope)
    return [({}, row) for row in totals if row.kind == kind.value]


def _model_rows(rule: Rule, context: SignalContext) -> list[tuple[dict[str, str], UsageRow]]:
    signal = rule.signal
    rows = context.models(rule.window_seconds, _scope(signal))
    return [
        ({"model": row.value}, row)
        for row in rows
        if signal.model is None or row.value == signal.model
    ]


def _by_model(signal: Signal) -> bool:
    return signal.model is not None or signal.group_by is GroupBy.MODEL


def _error_rate(rule: Rule, context: SignalContext) -> list[Sample]:
    minimum = max(rule.signal.min_count, 1)
    rows: list[tuple[dict[str, str], NameSummary | UsageRow]] = [
        *(_model_rows(rule, context) if _by_model(rule.signal) else _summaries(rule, context))
    ]
    return [
        Sample(labels, row.errors / row.count if row.count >= minimum else None)
        for labels, row in rows
    ]


def _request_count(rule: Rule, context: SignalContext) -> list[Sample]:
    rows: list[tuple[dict[str, str], NameSummary | UsageRow]] = [
        *(_model_rows(rule, context) if _by_model(rule.signal) else _summaries(rule, context))
    ]
    if not rows and rule.signal.route is None and rule.signal.integration is None:
        return [Sample({}, 0.0)]  # no traffic at all is a count of nought, not missing data
    return [Sample(labels, float(row.count)) for labels, row in rows]


def _latency(quantile: str) -> SignalFunction:
    def measure_latency(rule: Rule, context: SignalContext) -> list[Sample]:
        minimum = max(rule.signal.min_count, 1)
        samples = []
        for labels, row in _summaries(rule, context):
            value: float | None = getattr(row, quantile)
            samples.append(Sample(labels, value if row.count >= minimum else None))
        return samples

    return measure_latency


def _usage_total(rule: Rule, context: SignalContext, read: Callable[[Any], float]) -> list[Sample]:
    signal = rule.signal
    if _by_model(signal):
        return [Sample(labels, read(row)) for labels, row in _model_rows(rule, context)]
    totals = context.kind_totals(context.window(rule.window_seconds), _scope(signal))
    return [Sample({}, sum(read(row) for row in totals))]


def _ai_cost(rule: Rule, context: SignalContext) -> list[Sample]:
    return _usage_total(rule, context, lambda row: float(row.cost))


def _tokens(rule: Rule, context: SignalContext) -> list[Sample]:
    return _usage_total(rule, context, lambda row: float(row.input_tokens + row.output_tokens))


def _budget_used(rule: Rule, context: SignalContext) -> list[Sample]:
    """Cost since the period began, as a percentage of its budget setting."""
    period = rule.signal.budget
    now = context.now
    if period is BudgetPeriod.MONTH:
        budget = context.settings.ai_monthly_budget
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        budget = context.settings.ai_daily_budget
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if not budget or start >= now:
        return []
    totals = context.kind_totals(TimeRange(start, now), _scope(rule.signal))
    spent = sum(row.cost for row in totals)
    return [Sample({"budget": period.value if period else ""}, 100.0 * spent / budget)]


def _integration_health(rule: Rule, context: SignalContext) -> list[Sample]:
    """Each integration judged as ``/health`` judges it (its thresholds, its grading: 0 pass,
    1 warn, 2 fail), over the rule's window of stored calls rather than the last five minutes."""
    summaries = context.overview(rule.window_seconds, _scope(rule.signal), SpanKind.INTEGRATION)
    wanted = rule.signal.integration
    chosen = [row for row in summaries if wanted is None or row.name == wanted]
    window = [
        WindowStats(
            row.kind,
            row.name,
            rule.window_seconds,
            row.count,
            row.errors,
            row.p50,
            row.p95,
            row.p99,
        )
        for row in chosen
    ]
    thresholds = context.cached(
        ("thresholds",), lambda: ThresholdBook.from_settings(context.settings)
    )
    judged = judge_traffic(
        window, frozenset({SpanKind.INTEGRATION.value}), thresholds, {}, context.now
    )
    return [
        Sample({"integration": row.name}, HEALTH_VALUES[judged[row.name].status])
        for row in chosen
        if row.name in judged
    ]


def _circuit_state(rule: Rule, context: SignalContext) -> list[Sample]:
    since = (context.now - CIRCUIT_LOOKBACK).timestamp()
    points = context.cached(
        ("circuits", since), lambda: context.alerts.latest_points(CIRCUIT_METRIC, since)
    )
    latest: dict[str, float] = {}
    for value, attributes in points:
        name = str(attributes.get("integration", ""))
        if name and name not in latest:
            latest[name] = float(value)
    wanted = rule.signal.integration
    return [
        Sample({"integration": name}, value)
        for name, value in sorted(latest.items())
        if wanted is None or name == wanted
    ]


def _validation_failure_rate(rule: Rule, context: SignalContext) -> list[Sample]:
    signal = rule.signal
    total, failed = context.alerts.validation_counts(
        context.window(rule.window_seconds), _scope(signal), signal.validator, signal.target
    )
    labels = {}
    if signal.validator is not None:
        labels["validator"] = signal.validator
    if signal.target is not None:
        labels["target"] = signal.target
    if total < max(signal.min_count, 1):
        return [Sample(labels, None)]
    return [Sample(labels, failed / total)]


def _error_groups(rule: Rule, context: SignalContext) -> list[Sample]:
    """Error groups raising the rule's flag (new, spike, regressed) in the window, as the
    error groups' own judgement says: one sample per group, valued by its count there."""
    signal = rule.signal
    flag = ErrorFlag(signal.error_group or ErrorFlag.NEW.value)
    groups = context.store.error_groups(
        context.window(rule.window_seconds), _scope(signal), 1000, flag=flag
    )
    samples = [
        Sample({"error_group": group.id, "error_title": group.title[:200]}, float(group.count))
        for group in groups
    ]
    return samples or [Sample({}, 0.0)]


def _recorder_drops(rule: Rule, context: SignalContext) -> list[Sample]:
    total = context.alerts.metric_total(context.window(rule.window_seconds), DROPPED_METRIC)
    return [Sample({}, total or 0.0)]


def _queue_depth(rule: Rule, context: SignalContext) -> list[Sample]:
    """How full the evaluating process's recording buffer is, in percent."""
    if context.recorder_stats is None:
        return []
    stats = context.recorder_stats()
    if not stats.buffer_capacity:
        return []
    return [Sample({}, 100.0 * stats.buffer_depth / stats.buffer_capacity)]


def _metric(rule: Rule, context: SignalContext) -> list[Sample]:
    """A recorded metric (a business KPI, a monitored queue's size): summed or read last."""
    signal = rule.signal
    name = signal.metric or ""
    value = context.alerts.metric_reading(context.window(rule.window_seconds), name, _scope(signal))
    return [Sample({"metric": name}, value)]


def _memory(rule: Rule, context: SignalContext) -> list[Sample]:
    return [Sample({}, float(psutil.virtual_memory().percent))]


def _system_cpu(rule: Rule, context: SignalContext) -> list[Sample]:
    # Since the previous call: the evaluator calls it every cycle, so it spans one cycle.
    return [Sample({}, float(psutil.cpu_percent(interval=None)))]


def _disk(rule: Rule, context: SignalContext) -> list[Sample]:
    path = context.settings.sqlite_path.resolve().parent
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path if path.exists() else Path("/"))
    return [Sample({}, 100.0 * usage.used / usage.total)]


_SIGNALS.update(
    {
        SignalKind.ERROR_RATE: _error_rate,
        SignalKind.REQUEST_COUNT: _request_count,
        SignalKind.LATENCY_P50: _latency("p50"),
        SignalKind.LATENCY_P95: _latency("p95"),
        SignalKind.LATENCY_P99: _latency("p99"),
        SignalKind.AI_COST: _ai_cost,
        SignalKind.TOKENS: _tokens,
        SignalKind.BUDGET_USED: _budget_used,
        SignalKind.INTEGRATION_HEALTH: _integration_health,
        SignalKind.CIRCUIT_STATE: _circuit_state,
        SignalKind.VALIDATION_FAILURE_RATE: _validation_failure_rate,
        SignalKind.ERROR_GROUPS: _error_groups,
        SignalKind.RECORDER_DROPS: _recorder_drops,
        SignalKind.QUEUE_DEPTH: _queue_depth,
        SignalKind.MEMORY: _memory,
        SignalKind.SYSTEM_CPU: _system_cpu,
        SignalKind.DISK: _disk,
        SignalKind.METRIC: _metric,
    }
)
