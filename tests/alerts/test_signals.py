"""Signals measured from a real store's rollups and rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.support.stores import batch_of, span
from watchkeeper.alerts.rules import Rule, RuleError
from watchkeeper.alerts.signals import Sample, SignalContext, measure
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import Settings
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import (
    MetricKind,
    MetricPoint,
    Severity,
    SpanKind,
    ValidationResult,
)
from watchkeeper.storage.sql_store import SqlStore

NOW = time.time() - 60


def context(store: SqlStore) -> SignalContext:
    return SignalContext(
        store, AlertStore(store.engine), Settings(), datetime.fromtimestamp(NOW + 60, UTC)
    )


def rule(signal: dict[str, object], **changes: object) -> Rule:
    return Rule.model_validate(
        {"name": "R", "signal": signal, "thresholds": {"warning": 1}, **changes}
    )


def by_labels(samples: list[Sample]) -> dict[tuple[tuple[str, str], ...], float | None]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in samples}


def test_span_signals_come_from_the_rollups(store: SqlStore) -> None:
    spans = [
        span(NOW + index * 0.1, 0.1 + index * 0.01, name="GET /a", error=index % 4 == 0)
        for index in range(40)
    ]
    spans += [span(NOW + index, 0.05, name="GET /b") for index in range(10)]
    spans += [
        span(NOW + index, 0.3, kind=SpanKind.INTEGRATION, name="openai", error=index < 8)
        for index in range(10)
    ]
    store.write(batch_of(spans))
    ctx = context(store)
    rates = by_labels(measure(rule({"kind": "error_rate", "group_by": "route"}), ctx))
    assert rates == {(("route", "GET /a"),): 0.25, (("route", "GET /b"),): 0.0}
    total = measure(rule({"kind": "error_rate"}), ctx)
    assert total == [Sample({}, 10 / 50)]
    count = measure(rule({"kind": "request_count", "route": "GET /b"}), ctx)
    assert count == [Sample({"route": "GET /b"}, 10.0)]
    (p95,) = measure(rule({"kind": "latency_p95", "route": "GET /a"}), ctx)
    assert p95.value is not None
    assert 0.45 < p95.value < 0.55
    few = measure(rule({"kind": "error_rate", "route": "GET /b", "min_count": 100}), ctx)
    assert few == [Sample({"route": "GET /b"}, None)]
    health = measure(rule({"kind": "integration_health"}), ctx)
    assert health == [Sample({"integration": "openai"}, 2.0)]


def test_validation_failure_rate_of_one_validator(store: SqlStore) -> None:
    results = [
        ValidationResult(
            NOW + index, "minimum_score", "pinecone", index >= 3, 0.5, ">= 0.65", Severity.WARNING
        )
        for index in range(10)
    ]
    results.append(
        ValidationResult(NOW, "not_empty", "tts", False, None, "not empty", Severity.ERROR)
    )
    store.write(Batch("app", "one", validations=results))
    ctx = context(store)
    relevance = rule(
        {"kind": "validation_failure_rate", "validator": "minimum_score", "target": "pinecone"}
    )
    assert measure(relevance, ctx) == [
        Sample({"validator": "minimum_score", "target": "pinecone"}, 0.3)
    ]
    assert measure(rule({"kind": "validation_failure_rate"}), ctx) == [Sample({}, 4 / 11)]


def test_cost_tokens_and_budget_from_the_rollups(store: SqlStore) -> None:
    calls = [
        span(
            NOW + index,
            0.2,
            kind=SpanKind.INTEGRATION,
            name="openai",
            model="gpt-4o-mini" if index % 2 else "gpt-4o",
            input_tokens=100,
            output_tokens=50,
            cost=0.5,
        )
        for index in range(10)
    ]
    store.write(batch_of(calls))
    ctx = context(store)
    assert measure(rule({"kind": "ai_cost"}), ctx) == [Sample({}, 5.0)]
    by_model = by_labels(measure(rule({"kind": "tokens", "group_by": "model"}), ctx))
    assert by_model == {(("model", "gpt-4o"),): 750.0, (("model", "gpt-4o-mini"),): 750.0}
    ctx.settings = Settings(ai_daily_budget=20.0)
    (used,) = measure(rule({"kind": "budget_used", "budget": "day"}), ctx)
    # Spend since midnight UTC: none if midnight passed since the calls (the day's first minute).
    same_day = datetime.fromtimestamp(NOW, UTC).date() == ctx.now.date()
    assert used.value == (25.0 if same_day else 0.0)
    ctx.settings = Settings()
    assert measure(rule({"kind": "budget_used", "budget": "day"}), ctx) == []


def test_new_error_groups_are_one_sample_each(store: SqlStore) -> None:
    failures = [
        span(NOW + index, 0.1, name="POST /pay", error=True, error_type="CardDeclined")
        for index in range(3)
    ]
    store.write(batch_of(failures))
    (sample,) = measure(rule({"kind": "error_groups", "error_group": "new"}), context(store))
    assert sample.value == 3.0
    assert sample.labels["error_group"]


def test_process_and_host_signals_are_percentages(store: SqlStore) -> None:
    ctx = context(store)
    for kind in ("memory", "system_cpu", "disk"):
        (sample,) = measure(rule({"kind": kind}), ctx)
        assert sample.value is not None
        assert 0.0 <= sample.value <= 100.0
    assert measure(rule({"kind": "queue_depth"}), ctx) == []  # no recorder in this process


def test_a_metric_is_a_counters_sum_or_a_gauges_last_value(store: SqlStore) -> None:
    """A business KPI and a monitored queue's size, as the app records them."""
    points = [
        MetricPoint(NOW + 1, "credits.spent", MetricKind.COUNTER, 5.0, "org-a"),
        MetricPoint(NOW + 2, "credits.spent", MetricKind.COUNTER, 7.0, "org-b"),
        MetricPoint(NOW + 1, "queue.speech.size", MetricKind.GAUGE, 40.0),
        MetricPoint(NOW + 3, "queue.speech.size", MetricKind.GAUGE, 12.0),
        MetricPoint(NOW - 3_600, "credits.spent", MetricKind.COUNTER, 100.0, "org-a"),
    ]
    store.write(Batch("svc", "web-1", metrics=points))
    ctx = context(store)
    spent: dict[str, object] = {"kind": "metric", "metric": "credits.spent"}
    assert measure(rule(spent), ctx) == [Sample({"metric": "credits.spent"}, 12.0)]
    one_org = {**spent, "organisation": "org-a"}
    assert measure(rule(one_org), ctx) == [Sample({"metric": "credits.spent"}, 5.0)]
    queue: dict[str, object] = {"kind": "metric", "metric": "queue.speech.size"}
    assert measure(rule(queue), ctx) == [Sample({"metric": "queue.speech.size"}, 12.0)]
    unknown: dict[str, object] = {"kind": "metric", "metric": "nothing.recorded"}
    assert measure(rule(unknown), ctx) == [Sample({"metric": "nothing.recorded"}, None)]


@pytest.mark.parametrize(
    "signal", [{"kind": "metric"}, {"kind": "error_rate", "metric": "credits.spent"}]
)
def test_a_metric_signal_and_only_it_names_a_metric(signal: dict[str, object]) -> None:
    with pytest.raises(RuleError, match="metric names the metric"):
        rule(signal).checked()


def test_a_queues_wait_and_failures_come_from_its_job_spans(store: SqlStore) -> None:
    jobs = [
        span(NOW + index, 2.0 + index * 0.1, kind=SpanKind.QUEUE, name="avatar_jobs")
        for index in range(20)
    ]
    jobs += [span(NOW + 1, 0.5, kind=SpanKind.QUEUE, name="emails", error=True)]
    store.write(batch_of(jobs))
    ctx = context(store)
    (wait,) = measure(rule({"kind": "latency_p95", "queue": "avatar_jobs"}), ctx)
    assert wait.labels == {"queue": "avatar_jobs"}
    assert wait.value is not None
    assert 3.5 < wait.value < 4.2
    failures = by_labels(measure(rule({"kind": "error_rate", "group_by": "queue"}), ctx))
    assert failures == {(("queue", "avatar_jobs"),): 0.0, (("queue", "emails"),): 1.0}
