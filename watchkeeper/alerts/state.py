"""The alert state machine: pending → firing → resolved, for one rule and label set.

Pure: given the rule, the alert as stored (or none) and this cycle's value, it returns the alert
as it now stands and what happened, so the rules of ``for``, hysteresis and no-data are tested
without a store or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from watchkeeper.alerts.model import Alert, AlertEvent, AlertState, HistoryEntry, fingerprint
from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.rules import NoData, Rule


@dataclass
class Step:
    """An alert after one evaluation; ``alert`` is ``None`` when there is none to keep."""

    alert: Alert | None
    events: list[HistoryEntry] = field(default_factory=list)
    fired: bool = False
    """It went to firing in this step (or, already firing, its severity rose)."""
    resolved: bool = False
    """A firing alert resolved in this step."""


def no_data_severity(rule: Rule) -> Severity:
    return Severity.WARNING if rule.thresholds.warning is not None else Severity.CRITICAL


def advance(
    rule: Rule, labels: dict[str, str], alert: Alert | None, value: float | None, now: float
) -> Step:
    if value is None:
        match rule.no_data:
            case NoData.KEEP:
                if alert is None:
                    return Step(None)
                return Step(replace(alert, evaluated_at=now))
            case NoData.ALERT:
                level: Severity | None = no_data_severity(rule)
            case NoData.OK:
                level = None
    else:
        level = rule.level(value)
    if level is not None:
        return _breached(rule, labels, alert, value, level, now)
    if alert is None:
        return Step(None)
    return _clear(rule, alert, value, now)


def _breached(
    rule: Rule,
    labels: dict[str, str],
    alert: Alert | None,
    value: float | None,
    level: Severity,
    now: float,
) -> Step:
    if alert is None:
        alert = Alert(
            fingerprint=fingerprint(rule.name, labels),
            rule=rule.name,
            labels=dict(labels),
            state=AlertState.PENDING,
            severity=level,
            value=value,
            peak_value=value,
            threshold=rule.threshold(level),
            pending_since=now,
            evaluated_at=now,
        )
        step = Step(alert, [HistoryEntry(now, AlertEvent.PENDING, level.value, value)])
    else:
        rises = _rank(level) > _rank(alert.severity)
        alert = replace(
            alert,
            value=value,
            peak_value=_peak(rule, alert.peak_value, value),
            evaluated_at=now,
            clear_since=None,
            severity=level if alert.state is AlertState.PENDING or rises else alert.severity,
            threshold=rule.threshold(level) if rises else alert.threshold,
        )
        step = Step(alert)
        if rises and alert.state is AlertState.FIRING:
            step.events.append(HistoryEntry(now, AlertEvent.SEVERITY, level.value, value))
            step.fired = True
    if alert.state is AlertState.PENDING and now - alert.pending_since >= rule.for_seconds:
        alert.state = AlertState.FIRING
        alert.fired_at = now
        step.events.append(HistoryEntry(now, AlertEvent.FIRING, alert.severity.value, value))
        step.fired = True
    return step


def _clear(rule: Rule, alert: Alert, value: float | None, now: float) -> Step:
    alert = replace(alert, value=value, evaluated_at=now)
    if alert.state is AlertState.PENDING:
        # It never fired: it ends quietly, kept in the history as a pending that cleared.
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        return Step(alert, [HistoryEntry(now, AlertEvent.RESOLVED, None, value)])
    if value is not None and not rule.clears(value):
        alert.clear_since = None  # inside the hysteresis band: still firing
        return Step(alert)
    if alert.clear_since is None:
        alert.clear_since = now
    if now - alert.clear_since < rule.keep_firing_seconds:
        return Step(alert)
    alert.state = AlertState.RESOLVED
    alert.resolved_at = now
    return Step(alert, [HistoryEntry(now, AlertEvent.RESOLVED, None, value)], resolved=True)


def _rank(severity: Severity) -> int:
    return 2 if severity is Severity.CRITICAL else 1


def _peak(rule: Rule, peak: float | None, value: float | None) -> float | None:
    if value is None:
        return peak
    if peak is None:
        return value
    low_is_bad = rule.comparison.breached(0.0, 1.0)
    return min(peak, value) if low_is_bad else max(peak, value)
