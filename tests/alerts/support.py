"""Evaluators over a test's store, with recording channels, driven tick by tick."""

from __future__ import annotations

from collections.abc import Sequence

from watchkeeper.alerts.configuration import AlertsConfiguration
from watchkeeper.alerts.doubles import RecordingChannel
from watchkeeper.alerts.evaluator import Evaluator
from watchkeeper.alerts.model import RuleSource
from watchkeeper.alerts.notification import Channel
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.config import Settings
from watchkeeper.health.circuits import CircuitState
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import MetricKind, MetricPoint
from watchkeeper.recording.attributes import CIRCUIT_METRIC
from watchkeeper.recording.stats import DROPPED_METRIC
from watchkeeper.resilience.events import CIRCUIT_VALUES
from watchkeeper.storage.sql_store import SqlStore


def evaluator(
    store: SqlStore,
    rules: Sequence[Rule],
    channels: Sequence[Channel],
    holder: str = "one",
    **settings: object,
) -> Evaluator:
    configuration = AlertsConfiguration(
        [(rule, RuleSource.FILE, True) for rule in rules],
        {channel.name: channel for channel in channels},
    )
    alerts = AlertStore(store.engine)
    return Evaluator(
        Settings(alert_default_rules=False, **settings),  # type: ignore[arg-type]
        configuration,
        lambda: (store, alerts),
        holder=holder,
    )


def drops(store: SqlStore, at: float, count: int) -> None:
    point = MetricPoint(at, DROPPED_METRIC, MetricKind.COUNTER, count, None, {"reason": "full"})
    store.write(Batch("app", "one", metrics=[point]))


def circuit(store: SqlStore, at: float, integration: str, state: CircuitState) -> None:
    point = MetricPoint(
        at,
        CIRCUIT_METRIC,
        MetricKind.GAUGE,
        CIRCUIT_VALUES[state],
        None,
        {"integration": integration, "from": "closed", "to": state.value, "reason": "test"},
    )
    store.write(Batch("app", "one", metrics=[point]))


def recording(name: str = "ops") -> RecordingChannel:
    return RecordingChannel(name)
