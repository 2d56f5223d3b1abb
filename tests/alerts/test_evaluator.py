"""The evaluator over a real store: notifications on firing, repeats, acknowledgement,
silences, escalation, grouping, resolution, a failing channel, and the lease between two."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from tests.alerts.support import circuit, drops, evaluator, recording
from watchkeeper.alerts.doubles import RecordingChannel
from watchkeeper.alerts.evaluator import Evaluator
from watchkeeper.alerts.model import AlertState, DeliveryStatus, Matcher
from watchkeeper.alerts.notification import NotificationState
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.health.circuits import CircuitState
from watchkeeper.storage.sql_store import SqlStore

T0 = time.time() - 3600  # an hour ago: every moment the tests step through is in the past


def drops_rule(**changes: object) -> Rule:
    base: dict[str, object] = {
        "name": "Dropping",
        "signal": {"kind": "recorder_drops"},
        "window_seconds": 300,
        "thresholds": {"warning": 0},
        "channels": {"warning": [["ops"], ["oncall"]]},
        "repeat_seconds": 600,
    }
    base.update(changes)
    return Rule.model_validate(base)


def tick_and_deliver(ev: Evaluator, store: SqlStore, now: float) -> None:
    report = ev.tick(now)
    assert report.held
    asyncio.run(ev.deliver(AlertStore(store.engine)))


def test_fires_once_repeats_until_acknowledged_then_resolves(store: SqlStore) -> None:
    ops = recording("ops")
    ev = evaluator(store, [drops_rule()], [ops, recording("oncall")])
    drops(store, T0, 5)
    tick_and_deliver(ev, store, T0 + 10)
    assert [n.state for n in ops.notifications] == [NotificationState.FIRING]
    first = ops.notifications[0]
    assert first.rule == "Dropping"
    assert first.value == 5
    assert not first.repeat
    assert first.labels["alertname"] == "Dropping"
    assert first.labels["severity"] == "warning"
    tick_and_deliver(ev, store, T0 + 60)
    assert len(ops.notifications) == 1  # not yet the repeat interval
    drops(store, T0 + 500, 1)
    tick_and_deliver(ev, store, T0 + 620)
    assert len(ops.notifications) == 2
    assert ops.notifications[1].repeat
    alerts = AlertStore(store.engine)
    (alert,) = alerts.open_alerts()
    assert alert.id is not None
    assert alerts.acknowledge(alert.id, "ana", "looking") is not None
    drops(store, T0 + 1100, 1)
    tick_and_deliver(ev, store, T0 + 1300)
    assert len(ops.notifications) == 2  # acknowledged: no repeat
    tick_and_deliver(ev, store, T0 + 1800)  # the window holds no drops: resolved
    assert [n.state for n in ops.notifications][-1] is NotificationState.RESOLVED
    assert alerts.open_alerts() == []
    (done,) = alerts.recent_alerts(10)
    assert done.state is AlertState.RESOLVED
    assert done.acked_by == "ana"
    events = [entry.event.value for entry in alerts.events(done.id or 0)]
    # The acknowledgement is stamped with the real clock, the rest with the test's.
    assert sorted(events) == ["acknowledged", "firing", "pending", "resolved"]
    records = alerts.notifications(10)
    assert {record.status for record in records} == {DeliveryStatus.DELIVERED}


def test_a_silence_keeps_an_alert_quiet_until_it_ends(store: SqlStore) -> None:
    ops = recording("ops")
    ev = evaluator(store, [drops_rule()], [ops, recording("oncall")])
    alerts = AlertStore(store.engine)
    silence = alerts.add_silence(
        [Matcher(name="alertname", value="Dropping")], T0, T0 + 100, "ana", "deploying"
    )
    drops(store, T0, 5)
    tick_and_deliver(ev, store, T0 + 10)
    assert ops.notifications == []
    (alert,) = alerts.open_alerts()
    assert alert.state is AlertState.FIRING
    assert alerts.expire_silence(silence.id, T0 + 20)
    tick_and_deliver(ev, store, T0 + 30)
    assert len(ops.notifications) == 1


def test_unacknowledged_alerts_escalate_to_the_next_tier(store: SqlStore) -> None:
    ops, oncall = recording("ops"), recording("oncall")
    rule = drops_rule(escalate_after_seconds=120, repeat_seconds=3600)
    ev = evaluator(store, [rule], [ops, oncall])
    drops(store, T0, 5)
    tick_and_deliver(ev, store, T0 + 10)
    assert len(ops.notifications) == 1
    assert oncall.notifications == []
    drops(store, T0 + 100, 5)
    tick_and_deliver(ev, store, T0 + 140)
    assert len(oncall.notifications) == 1
    assert oncall.notifications[0].tier == 1
    assert len(ops.notifications) == 1
    tick_and_deliver(ev, store, T0 + 200)
    assert len(oncall.notifications) == 1


def test_alerts_firing_together_go_in_one_notification(store: SqlStore) -> None:
    ops = recording("ops")
    rule = Rule.model_validate(
        {
            "name": "CircuitOpen",
            "signal": {"kind": "circuit_state"},
            "comparison": ">=",
            "thresholds": {"critical": 2},
            "channels": {"critical": [["ops"]]},
        }
    )
    ev = evaluator(store, [rule], [ops])
    circuit(store, T0, "openai", CircuitState.OPEN)
    circuit(store, T0, "pinecone", CircuitState.OPEN)
    tick_and_deliver(ev, store, T0 + 10)
    assert len(ops.sent) == 1
    assert sorted(n.labels["integration"] for n in ops.sent[0]) == ["openai", "pinecone"]
    assert len({n.fingerprint for n in ops.sent[0]}) == 2
    circuit(store, T0 + 20, "openai", CircuitState.CLOSED)
    tick_and_deliver(ev, store, T0 + 30)
    assert [(n.labels["integration"], n.state) for n in ops.sent[1]] == [
        ("openai", NotificationState.RESOLVED)
    ]


def test_a_hanging_channel_is_cut_off_and_retried_later(store: SqlStore) -> None:
    stuck = RecordingChannel("ops", hang=True)
    ev = evaluator(store, [drops_rule(channels={"warning": [["ops"]]})], [stuck])
    ev.settings = ev.settings.model_copy(update={"alert_send_timeout": 0.2})
    drops(store, T0, 5)
    tick_and_deliver(ev, store, T0 + 10)
    alerts = AlertStore(store.engine)
    (record,) = alerts.notifications(10)
    assert record.status is DeliveryStatus.PENDING
    assert record.attempts == 1
    assert record.error is not None
    assert "no answer within" in record.error
    stuck.hang = False
    tick_and_deliver(ev, store, T0 + 20)
    (record,) = alerts.notifications(10)
    assert record.status is DeliveryStatus.DELIVERED
    assert len(stuck.notifications) == 1


def test_one_evaluator_at_a_time_and_the_next_takes_over_what_was_queued(
    store: SqlStore,
) -> None:
    ops = recording("ops")
    first = evaluator(store, [drops_rule()], [ops, recording("oncall")], holder="first")
    second = evaluator(store, [drops_rule()], [ops, recording("oncall")], holder="second")
    lease = first.settings.alert_lease_seconds
    drops(store, T0, 5)
    assert first.tick(T0 + 10).held
    assert not second.tick(T0 + 11).held
    # The first holder dies with its notification queued, not sent.
    assert not second.tick(T0 + 10 + lease - 1).held
    assert second.tick(T0 + 10 + lease + 1).held
    assert second.term == 2
    asyncio.run(second.deliver(AlertStore(store.engine)))
    assert len(ops.notifications) == 1
    # The first, back from a pause, can no longer write: its lease has moved.
    assert not first.tick(T0 + 10 + lease + 2).held
    tick_and_deliver(second, store, T0 + 10 + lease + 5)
    assert len(ops.notifications) == 1
    assert len(AlertStore(store.engine).recent_alerts(10)) == 1


class KeptAlive(RecordingChannel):
    """Like Alertmanager: a receiver that forgets a firing alert not posted again."""

    @property
    def resend_interval(self) -> timedelta:
        return timedelta(minutes=1)


def test_the_next_evaluator_posts_firing_alerts_again_where_they_must_be_kept_alive(
    store: SqlStore,
) -> None:
    ops, manager = recording("ops"), KeptAlive("alertmanager")
    rule = drops_rule(channels={"warning": [["ops", "alertmanager"]]})
    first = evaluator(store, [rule], [ops, manager], holder="first")
    second = evaluator(store, [rule], [ops, manager], holder="second")
    drops(store, T0, 5)
    tick_and_deliver(first, store, T0 + 10)
    assert len(ops.notifications) == len(manager.notifications) == 1
    tick_and_deliver(first, store, T0 + 20)  # the same holder: nothing again
    assert len(manager.notifications) == 1
    # The first holder dies; the second takes over with the alert still firing.
    takeover = T0 + 20 + first.settings.alert_lease_seconds + 1
    tick_and_deliver(second, store, takeover)
    assert len(ops.notifications) == 1  # people are not told twice
    assert [n.state for n in manager.notifications] == [NotificationState.FIRING] * 2
    assert manager.notifications[1].repeat
    assert manager.notifications[1].fingerprint == manager.notifications[0].fingerprint
    tick_and_deliver(second, store, takeover + 10)
    assert len(manager.notifications) == 2


@pytest.mark.parametrize("enabled", [False])
def test_a_rule_turned_off_resolves_its_alerts_quietly(store: SqlStore, enabled: bool) -> None:
    ops = recording("ops")
    ev = evaluator(store, [drops_rule()], [ops, recording("oncall")])
    drops(store, T0, 5)
    tick_and_deliver(ev, store, T0 + 10)
    alerts = AlertStore(store.engine)
    assert alerts.set_enabled("Dropping", enabled, "ana")
    tick_and_deliver(ev, store, T0 + 20)
    assert alerts.open_alerts() == []
    assert len(ops.notifications) == 1
