"""The built-in rules: on unless turned off (all, or each by name)."""

from __future__ import annotations

from watchkeeper.alerts.rules import (
    BudgetPeriod,
    ChannelTiers,
    Comparison,
    GroupBy,
    NoData,
    Rule,
    Signal,
    SignalKind,
    Thresholds,
)
from watchkeeper.config import Settings

RUNBOOK = "https://github.com/watchkeeper/watchkeeper#alerts"


def default_rules(settings: Settings) -> list[Rule]:
    first = list(settings.alert_default_channels)
    escalation = list(settings.alert_escalation_channels)
    channels = ChannelTiers(
        warning=[first] if first else [],
        critical=[tier for tier in (first, escalation) if tier],
    )
    escalate = int(settings.alert_escalate_after) if first and escalation else None

    def rule(
        name: str,
        signal: Signal,
        thresholds: Thresholds,
        summary: str,
        *,
        window: int = 300,
        for_seconds: int = 120,
        comparison: Comparison = Comparison.ABOVE,
        resolve: float | None = None,
    ) -> Rule:
        return Rule(
            name=name,
            signal=signal,
            window_seconds=window,
            comparison=comparison,
            thresholds=thresholds,
            for_seconds=for_seconds,
            keep_firing_seconds=60,
            resolve_threshold=resolve,
            no_data=NoData.OK,
            annotations={"summary": summary, "runbook_url": f"{RUNBOOK}-{name.lower()}"},
            channels=channels,
            escalate_after_seconds=escalate,
        )

    rules = [
        rule(
            "HighErrorRate",
            Signal(kind=SignalKind.ERROR_RATE, group_by=GroupBy.ROUTE, min_count=20),
            Thresholds(warning=0.05, critical=0.2),
            "More than 5 % of a route's requests fail",
            resolve=0.03,
        ),
        rule(
            "SlowResponses",
            Signal(kind=SignalKind.LATENCY_P95, group_by=GroupBy.ROUTE, min_count=20),
            Thresholds(warning=2.0, critical=5.0),
            "A route's p95 latency is above 2 s",
        ),
        rule(
            "IntegrationDown",
            Signal(kind=SignalKind.INTEGRATION_HEALTH),
            Thresholds(critical=2.0),
            "An integration is failing its health checks",
            for_seconds=60,
            comparison=Comparison.AT_LEAST,
        ),
        rule(
            "CircuitOpen",
            Signal(kind=SignalKind.CIRCUIT_STATE),
            Thresholds(critical=2.0),
            "An integration's circuit breaker is open",
            for_seconds=0,
            comparison=Comparison.AT_LEAST,
        ),
        rule(
            "AIErrors",
            Signal(kind=SignalKind.ERROR_RATE, group_by=GroupBy.MODEL, min_count=10),
            Thresholds(warning=0.1, critical=0.3),
            "Calls to an AI model fail",
        ),
        rule(
            "ValidationFailuresRising",
            Signal(kind=SignalKind.VALIDATION_FAILURE_RATE, min_count=20),
            Thresholds(warning=0.2, critical=0.5),
            "More than a fifth of validated answers fail their business rules",
            window=900,
        ),
        rule(
            "MemoryHigh",
            Signal(kind=SignalKind.MEMORY),
            Thresholds(warning=90.0, critical=97.0),
            "System memory is nearly full",
            resolve=85.0,
        ),
        rule(
            "MonitoringDroppingData",
            Signal(kind=SignalKind.RECORDER_DROPS),
            Thresholds(warning=0.0),
            "Watchkeeper is dropping recorded events",
            for_seconds=0,
        ),
    ]
    for period, budget in (
        (BudgetPeriod.DAY, settings.ai_daily_budget),
        (BudgetPeriod.MONTH, settings.ai_monthly_budget),
    ):
        if budget:
            rules.append(
                rule(
                    f"CostOverBudget{period.value.title()}",
                    Signal(kind=SignalKind.BUDGET_USED, budget=period),
                    Thresholds(warning=80.0, critical=100.0),
                    f"AI spend this {period.value} is near or over its budget of ${budget:g}",
                    for_seconds=0,
                    comparison=Comparison.AT_LEAST,
                )
            )
    return rules
