"""Rules are validated with clear messages; the state machine's pending, for, hysteresis and
no-data behaviour, without a store."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchkeeper.alerts.model import AlertState
from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.rules import Rule, RuleError
from watchkeeper.alerts.state import advance


def rule(**changes: object) -> Rule:
    base: dict[str, object] = {
        "name": "Errors",
        "signal": {"kind": "error_rate"},
        "thresholds": {"warning": 0.1, "critical": 0.5},
        "for_seconds": 60,
    }
    base.update(changes)
    return Rule.model_validate(base).checked()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "1bad"}, "String should match pattern"),
        ({"thresholds": {}}, "set a warning or a critical threshold"),
        ({"thresholds": {"warning": 0.5, "critical": 0.1}}, "must be past the warning one"),
        ({"resolve_threshold": 0.2}, "resolve_threshold (0.2) must be on the clear side"),
        ({"signal": {"kind": "budget_used"}}, "needs budget: day or month"),
        ({"signal": {"kind": "error_groups", "error_group": "odd"}}, "error_group must be one"),
        ({"signal": {"kind": "nothing"}}, "signal.kind"),
        ({"labels": {"severity": "x"}}, "set by Watchkeeper itself"),
        ({"window_seconds": 5}, "window_seconds"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_wrong_rule_is_refused_with_a_message_naming_what(
    changes: dict[str, object], message: str
) -> None:
    # Field errors are pydantic's (422 in the API); rules across fields are the rule's (400).
    with pytest.raises((ValidationError, RuleError)) as caught:
        rule(**changes)
    assert message in str(caught.value)


def test_pending_until_for_then_firing_with_the_worst_severity() -> None:
    r = rule()
    step = advance(r, {}, None, 0.2, 1000.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.PENDING
    assert step.alert.severity is Severity.WARNING
    assert not step.fired
    step = advance(r, {}, step.alert, 0.3, 1030.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.PENDING
    step = advance(r, {}, step.alert, 0.6, 1060.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.FIRING
    assert step.fired
    assert step.alert.severity is Severity.CRITICAL
    assert step.alert.fired_at == 1060.0
    assert step.alert.peak_value == 0.6


def test_a_pending_alert_that_clears_never_fires() -> None:
    r = rule()
    step = advance(r, {}, None, 0.2, 1000.0)
    step = advance(r, {}, step.alert, 0.0, 1030.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.RESOLVED
    assert not step.resolved
    assert step.alert.fired_at is None


def test_hysteresis_and_keep_firing_hold_a_firing_alert() -> None:
    r = rule(for_seconds=0, resolve_threshold=0.05, keep_firing_seconds=120)
    firing = advance(r, {}, None, 0.2, 0.0).alert
    assert firing is not None
    assert firing.state is AlertState.FIRING
    # Below the warning threshold but above resolve_threshold: still firing, no clear clock.
    step = advance(r, {}, firing, 0.08, 10.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.FIRING
    assert step.alert.clear_since is None
    step = advance(r, {}, step.alert, 0.01, 20.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.FIRING
    step = advance(r, {}, step.alert, 0.01, 139.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.FIRING
    step = advance(r, {}, step.alert, 0.01, 140.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.RESOLVED
    assert step.resolved


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("ok", AlertState.RESOLVED), ("keep", AlertState.FIRING), ("alert", AlertState.FIRING)],
)
def test_no_data_follows_the_rule_s_policy(policy: str, expected: AlertState) -> None:
    r = rule(for_seconds=0, no_data=policy)
    firing = advance(r, {}, None, 0.9, 0.0).alert
    step = advance(r, {}, firing, None, 10.0)
    assert step.alert is not None
    assert step.alert.state is expected


def test_no_data_alerting_fires_on_its_own() -> None:
    r = rule(for_seconds=0, no_data="alert")
    step = advance(r, {}, None, None, 0.0)
    assert step.alert is not None
    assert step.alert.state is AlertState.FIRING
    assert advance(rule(for_seconds=0), {}, None, None, 0.0).alert is None


def test_below_comparisons_fire_low_values() -> None:
    r = rule(comparison="<", thresholds={"warning": 10, "critical": 2}, for_seconds=0)
    step = advance(r, {}, None, 1.0, 0.0)
    assert step.alert is not None
    assert step.alert.severity is Severity.CRITICAL
    assert advance(r, {}, None, 50.0, 0.0).alert is None
