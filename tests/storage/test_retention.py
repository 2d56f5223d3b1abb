"""Retention deletes what is older than each table's period, in small batches, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.stores import T0, batch_of, span
from watchkeeper.config import Settings
from watchkeeper.model.events import (
    LogLevel,
    LogRecord,
    MetricKind,
    MetricPoint,
    Severity,
    Snapshot,
    ValidationResult,
)
from watchkeeper.model.query import RetainedTable
from watchkeeper.storage.retention import RetentionPolicy, apply_retention
from watchkeeper.storage.sql_store import SqlStore

NOW = datetime.fromtimestamp(T0 + 10 * 86_400, UTC)


def _write_day(store: SqlStore, days_ago: float, events: int) -> None:
    start = (NOW - timedelta(days=days_ago)).timestamp()
    times = [start + i * 61 for i in range(events)]  # one minute each
    session = f"s-{days_ago}"  # one session a day, active throughout it
    store.write(
        batch_of(
            [span(t, 0.1, org_id="o1", user_id="u1", model="m", session_id=session) for t in times],
            logs=[LogRecord(t, LogLevel.INFO, "app", "x") for t in times],
            metrics=[MetricPoint(t, "m", MetricKind.GAUGE, 1.0) for t in times],
            snapshots=[Snapshot(t, "ctx", {"t": t}, session_id=session) for t in times],
            validations=[
                ValidationResult(t, "v", "answer", True, 1.0, "1", Severity.INFO) for t in times
            ],
        )
    )


def test_retention_deletes_only_expired_rows_of_every_table(store: SqlStore) -> None:
    _write_day(store, days_ago=9, events=23)  # older than every period
    _write_day(store, days_ago=2, events=11)  # older only than the 1-day periods
    _write_day(store, days_ago=0.5, events=5)  # kept everywhere
    before = {table: store.count(table) for table in RetainedTable}
    policy = RetentionPolicy(
        spans=timedelta(days=7),
        logs=timedelta(days=1),
        metrics=timedelta(days=7),
        minute_rollups=timedelta(days=1),
        hour_rollups=timedelta(days=5),
    )
    progress: list[tuple[RetainedTable, int]] = []

    deleted = apply_retention(
        store, policy, now=NOW, batch_size=7, progress=lambda t, n: progress.append((t, n))
    )

    assert deleted[RetainedTable.SPANS] == deleted[RetainedTable.METRICS] == 23
    assert deleted[RetainedTable.SNAPSHOTS] == 23  # the spans' period
    assert deleted[RetainedTable.LOGS] == deleted[RetainedTable.VALIDATIONS] == 23 + 11
    assert deleted[RetainedTable.SESSIONS] == 1  # only the session last seen 9 days ago
    # One hour each: total, org, model and user rows.
    assert deleted[RetainedTable.HOUR_ROLLUPS] == 4
    # Each minute-level span made three minute rows: total, org and model.
    assert deleted[RetainedTable.MINUTE_ROLLUPS] == 3 * (23 + 11)
    for table in RetainedTable:
        assert store.count(table) == before[table] - deleted[table], table
    assert all(0 < n <= 7 for _, n in progress)
    assert sum(n for t, n in progress if t is RetainedTable.SPANS) == 23
    assert apply_retention(store, policy, now=NOW) == dict.fromkeys(RetainedTable, 0)


def test_policy_comes_from_settings() -> None:
    settings = Settings(retention_spans=timedelta(days=2), retention_hour_rollups=timedelta(9))
    policy = RetentionPolicy.from_settings(settings)
    assert policy.period(RetainedTable.SPANS) == timedelta(days=2)
    assert policy.period(RetainedTable.HOUR_ROLLUPS) == timedelta(days=9)
    assert policy.period(RetainedTable.MINUTE_ROLLUPS) == settings.retention_minute_rollups
    assert policy.period(RetainedTable.SNAPSHOTS) == timedelta(days=2)
    assert policy.period(RetainedTable.SESSIONS) == timedelta(days=2)
    assert policy.period(RetainedTable.VALIDATIONS) == settings.retention_logs
