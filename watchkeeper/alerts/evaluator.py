"""The evaluator: one at a time across every process sharing the store, under a lease.

Each cycle the process holding the lease measures every enabled rule's signal, advances each
alert's state, decides what to notify (first firing, repeats, escalation, resolution; nothing
for silenced alerts, no repeats once acknowledged), and writes state and queued notifications in
one transaction fenced by its lease term. Delivery then sends the queue, grouped per channel and
rule, each send under its own deadline, recording every attempt: a channel that fails or hangs
never holds the next evaluation up. A holder that dies leaves queued notifications behind, and
the next holder, within one lease period, sends them: none is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from watchkeeper.alerts.configuration import AlertsConfiguration
from watchkeeper.alerts.model import (
    Alert,
    AlertEvent,
    AlertState,
    DeliveryRecord,
    DeliveryStatus,
    HistoryEntry,
    Silence,
    StoredRule,
    fingerprint,
)
from watchkeeper.alerts.notification import (
    Channel,
    Delivery,
    KeepsAlertsAlive,
    Notification,
    NotificationState,
    Severity,
)
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.signals import SignalContext, measure
from watchkeeper.alerts.sql import AlertStore, Cycle, LeaseLost, QueuedNotification
from watchkeeper.alerts.state import advance
from watchkeeper.config import Settings
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.store import Queries
from watchkeeper.recording.stats import StatsSnapshot
from watchkeeper.redaction import scrub_error

logger = logging.getLogger("watchkeeper")

MAX_DELIVERY_CYCLES = 5
"""A notification whose channel failed this many times (each with its own retries) is given up
as failed, so a channel that is gone for good does not grow the queue."""


@dataclass(frozen=True)
class CycleReport:
    held: bool
    rules: int = 0
    alerts: int = 0
    queued: int = 0
    seconds: float = 0.0


class Evaluator:
    def __init__(
        self,
        settings: Settings,
        configuration: AlertsConfiguration,
        queries: Callable[[], tuple[Queries, AlertStore] | None],
        recorder_stats: Callable[[], StatsSnapshot] | None = None,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.configuration = configuration
        self.channels: dict[str, Channel] = dict(configuration.channels)
        self._queries = queries
        self._recorder_stats = recorder_stats
        self.holder = holder or f"{settings.instance}:{uuid.uuid4().hex[:8]}"
        self.term: int | None = None
        self._seeded = False
        self.last_cycle: CycleReport | None = None
        self._failures: dict[int, int] = defaultdict(int)
        self._posting_again = False

    # -- one cycle, off the event loop -------------------------------------------------------

    def tick(self, now: float | None = None) -> CycleReport:
        """Take or renew the lease; if held, evaluate every rule and queue notifications."""
        started = time.perf_counter()
        opened = self._queries()
        if opened is None:
            return CycleReport(held=False)
        store, alerts = opened
        moment = time.time() if now is None else now
        term = alerts.acquire_lease(self.holder, self.settings.alert_lease_seconds, moment)
        if term is None:
            self.term = None
            return CycleReport(held=False)
        # Started or taken over: what channels keep alive was kept alive by another process.
        self._posting_again = term != self.term
        if self._posting_again:
            logger.info("Watchkeeper: this process now evaluates alert rules (term %d)", term)
            self.term = term
        if not self._seeded:
            alerts.seed_rules(self.configuration.seeds)
            self._seeded = True
        rules = [stored for stored in alerts.rules() if stored.enabled]
        cycle = self.evaluate(store, alerts, rules, moment)
        try:
            alerts.commit_cycle(self.holder, term, cycle)
        except LeaseLost as error:
            logger.warning("Watchkeeper: alert evaluation stopped here: %s", error)
            self.term = None
            return CycleReport(held=False)
        report = CycleReport(
            True,
            len(rules),
            len(cycle.alerts),
            len(cycle.notifications),
            time.perf_counter() - started,
        )
        self.last_cycle = report
        return report

    def evaluate(
        self, store: Queries, alerts: AlertStore, rules: Sequence[StoredRule], now: float
    ) -> Cycle:
        context = SignalContext(
            store, alerts, self.settings, datetime.fromtimestamp(now, UTC), self._recorder_stats
        )
        open_alerts: dict[str, Alert] = {alert.fingerprint: alert for alert in alerts.open_alerts()}
        silences = alerts.silences(now)
        changed: list[Alert] = []
        events: list[tuple[str, HistoryEntry]] = []
        queued: list[QueuedNotification] = []
        by_rule: dict[str, list[Alert]] = defaultdict(list)
        for alert in open_alerts.values():
            by_rule[alert.rule].append(alert)
        for stored in rules:
            rule = stored.rule
            try:
                samples = measure(rule, context)
            except StoreUnavailable:
                raise
            except Exception:
                logger.exception("Watchkeeper: the alert rule %r could not be measured", rule.name)
                by_rule.pop(rule.name, None)  # its alerts stay as they are
                continue
            seen: dict[str, tuple[dict[str, str], float | None]] = {}
            for sample in samples:
                labels = {**rule.labels, **sample.labels}
                seen[fingerprint(rule.name, labels)] = (labels, sample.value)
            for alert in by_rule.pop(rule.name, []):
                seen.setdefault(alert.fingerprint, (alert.labels, None))
            for key, (labels, value) in seen.items():
                step = advance(rule, labels, open_alerts.get(key), value, now)
                if step.alert is None:
                    continue
                alert = step.alert
                events.extend((alert.fingerprint, entry) for entry in step.events)
                queued.extend(
                    self._decide(rule, alert, step.fired, step.resolved, silences, events, now)
                )
                changed.append(alert)
        # Alerts of rules deleted or turned off end quietly.
        for orphans in by_rule.values():
            for alert in orphans:
                alert.state = AlertState.RESOLVED
                alert.resolved_at = now
                alert.evaluated_at = now
                events.append(
                    (alert.fingerprint, HistoryEntry(now, AlertEvent.RESOLVED, note="rule removed"))
                )
                changed.append(alert)
        return Cycle(changed, events, queued)

    def _decide(
        self,
        rule: Rule,
        alert: Alert,
        fired: bool,
        resolved: bool,
        silences: Sequence[Silence],
        events: list[tuple[str, HistoryEntry]],
        now: float,
    ) -> list[QueuedNotification]:
        """What to notify about this alert now, and its tier and notified time updated."""
        tiers = rule.channels.tiers(alert.severity)
        if resolved:
            if alert.notified_at is None:
                return []
            names = [name for tier in tiers[: alert.tier + 1] for name in tier]
            return self._queue(rule, alert, names, NotificationState.RESOLVED, now)
        if alert.state is not AlertState.FIRING:
            return []
        labels = {**alert.labels, "alertname": rule.name, "severity": alert.severity.value}
        if any(silence.covers(labels, now) for silence in silences):
            return []
        if self._posting_again and not fired and alert.notified_at is not None:
            names = [
                name
                for tier in tiers[: alert.tier + 1]
                for name in tier
                if isinstance(self.channels.get(name), KeepsAlertsAlive)
            ]
            return self._queue(rule, alert, names, NotificationState.FIRING, now, repeat=True)
        repeat = False
        if fired or alert.notified_at is None:
            pass
        elif alert.acked_at is not None:
            return []
        elif self._escalates(rule, alert, tiers, now):
            alert.tier += 1
            events.append(
                (
                    alert.fingerprint,
                    HistoryEntry(now, AlertEvent.ESCALATED, alert.severity.value, alert.value),
                )
            )
            repeat = True
        elif now - alert.notified_at >= rule.repeat_seconds:
            repeat = True
        else:
            return []
        alert.notified_at = now
        names = tiers[alert.tier] if alert.tier < len(tiers) else []
        return self._queue(rule, alert, names, NotificationState.FIRING, now, repeat)

    @staticmethod
    def _escalates(rule: Rule, alert: Alert, tiers: Sequence[Sequence[str]], now: float) -> bool:
        after = rule.escalate_after_seconds
        if after is None or alert.tier + 1 >= len(tiers) or alert.fired_at is None:
            return False
        return now - alert.fired_at >= after * (alert.tier + 1)

    def _queue(
        self,
        rule: Rule,
        alert: Alert,
        names: Sequence[str],
        state: NotificationState,
        now: float,
        repeat: bool = False,
    ) -> list[QueuedNotification]:
        if not names:
            return []
        group_key = rule.name
        notification = Notification(
            fingerprint=alert.fingerprint,
            rule=rule.name,
            severity=alert.severity,
            state=state,
            value=alert.value,
            labels={**alert.labels, "alertname": rule.name, "severity": alert.severity.value},
            annotations=dict(rule.annotations),
            started_at=datetime.fromtimestamp(alert.fired_at or alert.pending_since, UTC),
            ended_at=datetime.fromtimestamp(now, UTC)
            if state is NotificationState.RESOLVED
            else None,
            dashboard_url=self.settings.dashboard_url,
            group_key=group_key,
            threshold=alert.threshold,
            repeat=repeat,
            tier=alert.tier,
        )
        payload = encode_notification(notification)
        return [
            QueuedNotification(alert.fingerprint, name, group_key, payload)
            for name in dict.fromkeys(names)
        ]

    # -- delivery, on the event loop ---------------------------------------------------------

    async def deliver(self, alerts: AlertStore) -> int:
        """Send what is queued, one call per channel and group; the number of calls made."""
        pending = await asyncio.to_thread(alerts.pending_notifications)
        groups: dict[tuple[str, str], list[DeliveryRecord]] = defaultdict(list)
        for record in pending:
            groups[(record.channel, record.group_key)].append(record)
        sends = [self._send(alerts, name, records) for (name, _), records in groups.items()]
        await asyncio.gather(*sends)
        return len(sends)

    async def _send(self, alerts: AlertStore, name: str, records: list[DeliveryRecord]) -> None:
        ids = [record.id for record in records]
        channel = self.channels.get(name)
        if channel is None:
            await asyncio.to_thread(
                alerts.record_delivery,
                ids,
                DeliveryStatus.FAILED,
                0,
                f"no channel named {name!r} is configured here",
            )
            return
        notifications = [decode_notification(record.payload) for record in records]
        delivery = await send_bounded(channel, notifications, self.settings.alert_send_timeout)
        if delivery.delivered:
            status = DeliveryStatus.DELIVERED
        else:
            failures = max(self._failures[record.id] for record in records) + 1
            for record in records:
                self._failures[record.id] = failures
            status = (
                DeliveryStatus.FAILED if failures >= MAX_DELIVERY_CYCLES else DeliveryStatus.PENDING
            )
            logger.warning(
                "Watchkeeper: the %s channel could not deliver %d notification(s): %s",
                name,
                len(records),
                delivery.error,
            )
        await asyncio.to_thread(
            alerts.record_delivery, ids, status, delivery.attempts, delivery.error
        )
        if status is not DeliveryStatus.PENDING:
            for record in records:
                self._failures.pop(record.id, None)

    async def aclose(self) -> None:
        for channel in self.channels.values():
            try:
                await channel.aclose()
            except Exception:
                logger.exception("Watchkeeper: the %s channel did not close cleanly", channel.name)


async def send_bounded(
    channel: Channel, notifications: Sequence[Notification], timeout: float
) -> Delivery:
    """``channel.send`` under a deadline; whatever it raises becomes a failed delivery."""
    try:
        return await asyncio.wait_for(channel.send(notifications), timeout)
    except TimeoutError:
        return Delivery(channel.name, False, 1, f"no answer within {timeout:g} s")
    except Exception as error:  # a channel must not raise; one that does is a failure
        return Delivery(channel.name, False, 1, scrub_error(f"{type(error).__name__}: {error}"))


def encode_notification(notification: Notification) -> str:
    data = asdict(notification)
    data["severity"] = notification.severity.value
    data["state"] = notification.state.value
    data["labels"] = dict(notification.labels)
    data["annotations"] = dict(notification.annotations)
    data["started_at"] = notification.started_at.timestamp()
    data["ended_at"] = notification.ended_at.timestamp() if notification.ended_at else None
    return json.dumps(data, sort_keys=True)


def decode_notification(payload: str) -> Notification:
    data = json.loads(payload)
    ended = data.get("ended_at")
    return Notification(
        fingerprint=data["fingerprint"],
        rule=data["rule"],
        severity=Severity(data["severity"]),
        state=NotificationState(data["state"]),
        value=data.get("value"),
        labels=data.get("labels", {}),
        annotations=data.get("annotations", {}),
        started_at=datetime.fromtimestamp(data["started_at"], UTC),
        ended_at=datetime.fromtimestamp(ended, UTC) if ended is not None else None,
        dashboard_url=data.get("dashboard_url"),
        group_key=data.get("group_key", ""),
        threshold=data.get("threshold"),
        repeat=bool(data.get("repeat", False)),
        tier=int(data.get("tier", 0)),
    )
