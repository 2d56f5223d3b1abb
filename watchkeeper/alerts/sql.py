"""Alerts in the store: rules, alerts and their events, silences, the notification outbox, the
evaluator's lease, and the few signal queries the store's query layer does not answer.

Writes that the evaluator makes are fenced by its lease: :meth:`AlertStore.commit_cycle` checks,
in the same transaction, that this holder still holds the lease with the same term, so an
evaluator that lost its lease (paused, partitioned) cannot write state or queue notifications
next to the new holder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from watchkeeper.alerts.model import (
    Alert,
    AlertEvent,
    AlertState,
    DeliveryRecord,
    DeliveryStatus,
    HistoryEntry,
    Matcher,
    RuleSource,
    Silence,
    StoredRule,
)
from watchkeeper.alerts.notification import Severity
from watchkeeper.alerts.rules import Rule
from watchkeeper.model.errors import StoreUnavailable
from watchkeeper.model.events import MetricKind
from watchkeeper.model.query import Scope, TimeRange
from watchkeeper.storage.engine import write_transaction
from watchkeeper.storage.errors import DATABASE_ERRORS, describe_error
from watchkeeper.storage.schema import (
    alert_events,
    alert_lease,
    alert_notifications,
    alert_rules,
    alert_silences,
    alerts,
    metric_points,
    validations,
)

EVALUATOR_LEASE = "evaluator"
_ACK_COLUMNS = ("acked_at", "acked_by", "ack_note")


class LeaseLost(Exception):
    """This evaluator no longer holds the lease: another took over; its cycle is dropped."""


@dataclass(frozen=True, slots=True)
class QueuedNotification:
    """A notification decided in a cycle, queued with the cycle's state in one transaction."""

    alert_key: str
    """The fingerprint of the alert it is about (its id is known only once written)."""
    channel: str
    group_key: str
    payload: str


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one evaluation cycle changes, committed together under the lease."""

    alerts: Sequence[Alert]
    events: Sequence[tuple[str, HistoryEntry]]
    notifications: Sequence[QueuedNotification]


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"could not {action}: {describe_error(error)}") from error

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with write_transaction(self.engine) as connection:
                yield connection
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"could not {action}: {describe_error(error)}") from error

    # -- rules -------------------------------------------------------------------------------

    def rules(self) -> list[StoredRule]:
        with self._read("read alert rules") as connection:
            rows = connection.execute(select(alert_rules).order_by(alert_rules.c.name)).all()
        return [_stored_rule(row) for row in rows]

    def rule(self, name: str) -> StoredRule | None:
        with self._read("read an alert rule") as connection:
            row = connection.execute(select(alert_rules).where(alert_rules.c.name == name)).first()
        return None if row is None else _stored_rule(row)

    def put_rule(
        self, rule: Rule, source: RuleSource, actor: str | None, enabled: bool | None = None
    ) -> StoredRule:
        """Create or replace a rule; ``enabled`` ``None`` keeps what it was (on when new)."""
        now = time.time()
        definition = rule.model_dump_json(exclude_defaults=True)
        with self._write("store an alert rule") as connection:
            row = connection.execute(
                select(alert_rules).where(alert_rules.c.name == rule.name)
            ).first()
            if row is None:
                connection.execute(
                    insert(alert_rules).values(
                        name=rule.name,
                        definition=definition,
                        enabled=True if enabled is None else enabled,
                        source=source.value,
                        created_at=now,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
            else:
                connection.execute(
                    update(alert_rules)
                    .where(alert_rules.c.name == rule.name)
                    .values(
                        definition=definition,
                        enabled=row.enabled if enabled is None else enabled,
                        source=source.value,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
        stored = self.rule(rule.name)
        if stored is None:
            raise StoreUnavailable("the rule just stored could not be read back")
        return stored

    def seed_rules(self, seeds: Sequence[tuple[Rule, RuleSource, bool]]) -> None:
        """Rules from the defaults and the rules file: added when missing, and replaced when
        they still come from the same source (a rule changed through the API stays changed)."""
        for rule, source, enabled in seeds:
            stored = self.rule(rule.name)
            if stored is None or (
                stored.source is source and (stored.rule != rule or stored.enabled != enabled)
            ):
                self.put_rule(rule, source, None, enabled)

    def set_enabled(self, name: str, enabled: bool, actor: str | None) -> bool:
        with self._write("turn an alert rule on or off") as connection:
            result = connection.execute(
                update(alert_rules)
                .where(alert_rules.c.name == name)
                .values(enabled=enabled, updated_at=time.time(), updated_by=actor, source="api")
            )
        return bool(result.rowcount)

    def delete_rule(self, name: str) -> bool:
        with self._write("delete an alert rule") as connection:
            result = connection.execute(delete(alert_rules).where(alert_rules.c.name == name))
        return bool(result.rowcount)

    # -- alerts ------------------------------------------------------------------------------

    def open_alerts(self) -> list[Alert]:
        with self._read("read open alerts") as connection:
            rows = connection.execute(
                select(alerts).where(alerts.c.state != AlertState.RESOLVED.value)
            ).all()
        return [_alert(row) for row in rows]

    def recent_alerts(self, limit: int, rule: str | None = None) -> list[Alert]:
        """Alerts newest first, resolved ones included: the history."""
        query = select(alerts).order_by(alerts.c.pending_since.desc(), alerts.c.id.desc())
        if rule is not None:
            query = query.where(alerts.c.rule == rule)
        with self._read("read alert history") as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_alert(row) for row in rows]

    def alert(self, alert_id: int) -> Alert | None:
        with self._read("read an alert") as connection:
            row = connection.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        return None if row is None else _alert(row)

    def events(self, alert_id: int) -> list[HistoryEntry]:
        with self._read("read an alert's history") as connection:
            rows = connection.execute(
                select(alert_events)
                .where(alert_events.c.alert_id == alert_id)
                .order_by(alert_events.c.time, alert_events.c.id)
            ).all()
        return [
            HistoryEntry(
                row.time, AlertEvent(row.event), row.severity, row.value, row.actor, row.note
            )
            for row in rows
        ]

    def acknowledge(self, alert_id: int, actor: str, note: str) -> Alert | None:
        now = time.time()
        with self._write("acknowledge an alert") as connection:
            result = connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state != AlertState.RESOLVED.value)
                .values(acked_at=now, acked_by=actor, ack_note=note)
            )
            if result.rowcount:
                connection.execute(
                    insert(alert_events).values(
                        alert_id=alert_id,
                        time=now,
                        event=AlertEvent.ACKNOWLEDGED.value,
                        actor=actor,
                        note=note,
                    )
                )
        return self.alert(alert_id) if result.rowcount else None

    def commit_cycle(self, holder: str, term: int, cycle: Cycle) -> None:
        """Write a cycle's alerts, events and queued notifications, if the lease is still ours."""
        with self._write("store the alerts' evaluation") as connection:
            _check_lease(connection, holder, term)
            ids: dict[str, int] = {}
            for alert in cycle.alerts:
                values = _alert_values(alert)
                if alert.id is None:
                    result = connection.execute(insert(alerts).values(**values))
                    key = result.inserted_primary_key
                    alert.id = int(key[0]) if key is not None else None
                else:
                    # Acknowledgement is the API's to write: a cycle never overwrites one made
                    # while it evaluated.
                    for column in _ACK_COLUMNS:
                        values.pop(column)
                    connection.execute(
                        update(alerts).where(alerts.c.id == alert.id).values(**values)
                    )
                if alert.id is not None:
                    ids[alert.fingerprint] = alert.id
            events = [
                {
                    "alert_id": ids[key],
                    "time": entry.time,
                    "event": entry.event.value,
                    "severity": entry.severity,
                    "value": entry.value,
                    "actor": entry.actor,
                    "note": entry.note,
                }
                for key, entry in cycle.events
                if key in ids
            ]
            if events:
                connection.execute(insert(alert_events), events)
            queued = [
                {
                    "alert_id": ids[item.alert_key],
                    "channel": item.channel,
                    "group_key": item.group_key,
                    "payload": item.payload,
                    "created_at": time.time(),
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                }
                for item in cycle.notifications
                if item.alert_key in ids
            ]
            if queued:
                connection.execute(insert(alert_notifications), queued)

    # -- silences ----------------------------------------------------------------------------

    def add_silence(
        self,
        matchers: Sequence[Matcher],
        starts_at: float,
        ends_at: float,
        actor: str,
        comment: str,
    ) -> Silence:
        text = json.dumps([matcher.model_dump(mode="json") for matcher in matchers])
        with self._write("store a silence") as connection:
            result = connection.execute(
                insert(alert_silences).values(
                    matchers=text,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=actor,
                    comment=comment,
                )
            )
        key = result.inserted_primary_key
        return Silence(
            int(key[0]) if key is not None else 0,
            tuple(matchers),
            starts_at,
            ends_at,
            actor,
            comment,
        )

    def silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        query = select(alert_silences).order_by(alert_silences.c.ends_at.desc())
        if not include_expired:
            query = query.where(alert_silences.c.ends_at > now)
        with self._read("read silences") as connection:
            rows = connection.execute(query.limit(500)).all()
        return [_silence(row) for row in rows]

    def expire_silence(self, silence_id: int, now: float) -> bool:
        with self._write("end a silence") as connection:
            result = connection.execute(
                update(alert_silences)
                .where(alert_silences.c.id == silence_id, alert_silences.c.ends_at > now)
                .values(ends_at=now)
            )
        return bool(result.rowcount)

    # -- notifications -----------------------------------------------------------------------

    def pending_notifications(self, limit: int = 500) -> list[DeliveryRecord]:
        with self._read("read queued notifications") as connection:
            rows = connection.execute(
                select(alert_notifications)
                .where(alert_notifications.c.status == DeliveryStatus.PENDING.value)
                .order_by(alert_notifications.c.id)
                .limit(limit)
            ).all()
        return [_delivery(row) for row in rows]

    def notifications(self, limit: int, alert_id: int | None = None) -> list[DeliveryRecord]:
        query = select(alert_notifications).order_by(alert_notifications.c.id.desc())
        if alert_id is not None:
            query = query.where(alert_notifications.c.alert_id == alert_id)
        with self._read("read notifications") as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_delivery(row) for row in rows]

    def record_delivery(
        self,
        ids: Sequence[int],
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
    ) -> None:
        with self._write("record a delivery") as connection:
            connection.execute(
                update(alert_notifications)
                .where(alert_notifications.c.id.in_(ids))
                .values(
                    status=status.value,
                    attempts=alert_notifications.c.attempts + attempts,
                    error=error,
                    sent_at=time.time() if status is DeliveryStatus.DELIVERED else None,
                )
            )

    # -- the lease ---------------------------------------------------------------------------

    def acquire_lease(self, holder: str, seconds: float, now: float | None = None) -> int | None:
        """Take or renew the evaluator's lease; its term (raised on each change of holder), or
        ``None`` while another holder's lease has not expired."""
        moment = time.time() if now is None else now
        try:
            with self._write("take the evaluator's lease") as connection:
                row = connection.execute(
                    select(alert_lease)
                    .where(alert_lease.c.name == EVALUATOR_LEASE)
                    .with_for_update()
                ).first()
                if row is None:
                    connection.execute(
                        insert(alert_lease).values(
                            name=EVALUATOR_LEASE, holder=holder, expires_at=moment + seconds, term=1
                        )
                    )
                    return 1
                if row.holder != holder and row.expires_at > moment:
                    return None
                term = int(row.term) if row.holder == holder else int(row.term) + 1
                connection.execute(
                    update(alert_lease)
                    .where(alert_lease.c.name == EVALUATOR_LEASE)
                    .values(holder=holder, expires_at=moment + seconds, term=term)
                )
                return term
        except StoreUnavailable as error:
            if isinstance(error.__cause__, IntegrityError):
                return None  # another process created the lease row first
            raise

    def release_lease(self, holder: str) -> None:
        """Let the next evaluator take over at once (a clean stop), not after the lease ends."""
        with self._write("release the evaluator's lease") as connection:
            connection.execute(
                update(alert_lease)
                .where(alert_lease.c.name == EVALUATOR_LEASE, alert_lease.c.holder == holder)
                .values(expires_at=0.0)
            )

    def lease_holder(self) -> tuple[str, float, int] | None:
        with self._read("read the evaluator's lease") as connection:
            row = connection.execute(
                select(alert_lease).where(alert_lease.c.name == EVALUATOR_LEASE)
            ).first()
        return None if row is None else (row.holder, row.expires_at, int(row.term))

    # -- signals the query layer does not answer ---------------------------------------------

    def validation_counts(
        self, time_range: TimeRange, scope: Scope, validator: str | None, target: str | None
    ) -> tuple[int, int]:
        """(results, failures) in the range, of one validator and target when given."""
        conditions = [
            validations.c.time >= time_range.start_ts,
            validations.c.time < time_range.end_ts,
        ]
        if validator is not None:
            conditions.append(validations.c.validator == validator)
        if target is not None:
            conditions.append(validations.c.target == target)
        conditions.extend(_scoped(validations, scope))
        failed = func.sum(case((validations.c.passed.is_(False), 1), else_=0))
        with self._read("count validation results") as connection:
            row = connection.execute(select(func.count(), failed).where(and_(*conditions))).one()
        return int(row[0] or 0), int(row[1] or 0)

    def metric_total(self, time_range: TimeRange, name: str) -> float | None:
        with self._read("sum metric points") as connection:
            row = connection.execute(
                select(func.count(), func.sum(metric_points.c.value)).where(
                    metric_points.c.name == name,
                    metric_points.c.time >= time_range.start_ts,
                    metric_points.c.time < time_range.end_ts,
                )
            ).one()
        return float(row[1] or 0.0) if row[0] else None

    def metric_reading(self, time_range: TimeRange, name: str, scope: Scope) -> float | None:
        """A metric over the range: a counter's sum, a gauge's last value; ``None``: no point."""
        in_range = [
            metric_points.c.name == name,
            metric_points.c.time >= time_range.start_ts,
            metric_points.c.time < time_range.end_ts,
        ]
        if scope.org_id is not None:
            in_range.append(metric_points.c.org_id == scope.org_id)
        with self._read("read a metric") as connection:
            last = connection.execute(
                select(metric_points.c.kind, metric_points.c.value)
                .where(*in_range)
                .order_by(metric_points.c.time.desc())
                .limit(1)
            ).first()
            if last is None:
                return None
            if last[0] != MetricKind.COUNTER.value:
                return float(last[1])
            total = connection.execute(select(func.sum(metric_points.c.value)).where(*in_range))
            return float(total.scalar_one() or 0.0)

    def latest_points(
        self, name: str, since: float, limit: int = 1000
    ) -> list[tuple[float, dict[str, Any]]]:
        """(value, attributes) of a metric's latest points since ``since``, newest first."""
        with self._read("read metric points") as connection:
            rows = connection.execute(
                select(metric_points.c.value, metric_points.c.attributes)
                .where(metric_points.c.name == name, metric_points.c.time >= since)
                .order_by(metric_points.c.time.desc())
                .limit(limit)
            ).all()
        return [(row[0], json.loads(row[1]) if row[1] else {}) for row in rows]


def _scoped(table: Any, scope: Scope) -> list[Any]:
    conditions = []
    if scope.org_id is not None:
        conditions.append(table.c.org_id == scope.org_id)
    if scope.user_id is not None:
        conditions.append(table.c.user_id == scope.user_id)
    return conditions


def _check_lease(connection: Connection, holder: str, term: int) -> None:
    row = connection.execute(
        select(alert_lease).where(alert_lease.c.name == EVALUATOR_LEASE).with_for_update()
    ).first()
    if row is None or row.holder != holder or int(row.term) != term:
        raise LeaseLost(f"the evaluator's lease is now held by {row.holder if row else 'nobody'}")


def _stored_rule(row: Row[Any]) -> StoredRule:
    return StoredRule(
        Rule.model_validate_json(row.definition),
        bool(row.enabled),
        RuleSource(row.source),
        row.created_at,
        row.updated_at,
        row.updated_by,
    )


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        fingerprint=row.fingerprint,
        rule=row.rule,
        labels=json.loads(row.labels),
        state=AlertState(row.state),
        severity=Severity(row.severity),
        value=row.value,
        peak_value=row.peak_value,
        threshold=row.threshold,
        pending_since=row.pending_since,
        evaluated_at=row.evaluated_at,
        fired_at=row.fired_at,
        clear_since=row.clear_since,
        resolved_at=row.resolved_at,
        acked_at=row.acked_at,
        acked_by=row.acked_by,
        ack_note=row.ack_note,
        tier=row.tier,
        notified_at=row.notified_at,
        id=row.id,
    )


def _alert_values(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "labels": json.dumps(alert.labels, sort_keys=True),
        "state": alert.state.value,
        "severity": alert.severity.value,
        "value": alert.value,
        "peak_value": alert.peak_value,
        "threshold": alert.threshold,
        "pending_since": alert.pending_since,
        "evaluated_at": alert.evaluated_at,
        "fired_at": alert.fired_at,
        "clear_since": alert.clear_since,
        "resolved_at": alert.resolved_at,
        "acked_at": alert.acked_at,
        "acked_by": alert.acked_by,
        "ack_note": alert.ack_note,
        "tier": alert.tier,
        "notified_at": alert.notified_at,
    }


def _silence(row: Row[Any]) -> Silence:
    matchers = tuple(Matcher.model_validate(item) for item in json.loads(row.matchers))
    return Silence(row.id, matchers, row.starts_at, row.ends_at, row.created_by, row.comment)


def _delivery(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        row.id,
        row.alert_id,
        row.channel,
        row.group_key,
        row.payload,
        row.created_at,
        DeliveryStatus(row.status),
        row.attempts,
        row.error,
        row.sent_at,
    )
