"""Alert evaluation: one cycle of 100 rules over the rollups of 10,000,000 spans.

The store holds the rollups (every level and dimension the flush worker writes) that
10,000,000 spans over one day produce: the spans are generated as the query benchmark generates
them (``bench.queries``: 20 names, 5 organisations, 1,000 users, 2 % errors, the ``openai``
calls with a model, tokens and a cost) and turned into rollups by the product's
``build_rollups``, written through ``SqlStore.write``. Their raw rows are not inserted: no signal
of these rules reads them (that is the point), and loading 10 M raw rows would take most of the
run on this machine. A cycle is ``Evaluator.tick``: the lease renewed, 100 enabled rules
(error rates, request counts and p50/p95/p99 latencies per route, integration health, AI cost and
tokens per model, the daily budget, with windows from 5 minutes to 24 hours) measured, every
alert's state advanced and stored, notifications queued. Median of 5 cycles, beside the default
evaluation interval (15 s): the share of the interval a cycle uses.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from bench.common import NAMES, Result, main_for, sqlite_settings
from bench.queries import CHUNK, DAY, INTEGRATIONS, _spans
from watchkeeper.alerts.configuration import AlertsConfiguration
from watchkeeper.alerts.doubles import RecordingChannel
from watchkeeper.alerts.evaluator import Evaluator
from watchkeeper.alerts.model import RuleSource
from watchkeeper.alerts.rules import Rule
from watchkeeper.alerts.sql import AlertStore
from watchkeeper.model.batch import Batch
from watchkeeper.model.rollups import build_rollups
from watchkeeper.storage.factory import open_store
from watchkeeper.storage.sql_store import SqlStore

RULES = 100
CYCLES = 5
INTERVAL_SECONDS = 15.0
WINDOWS = (300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def _rules() -> list[Rule]:
    routes = [name for name in NAMES if name not in INTEGRATIONS]
    kinds = ("error_rate", "request_count", "latency_p50", "latency_p95", "latency_p99")
    rules: list[dict[str, object]] = []
    for index in range(60):
        rules.append(
            {
                "signal": {"kind": kinds[index % len(kinds)], "route": routes[index % len(routes)]},
                "window_seconds": WINDOWS[index % len(WINDOWS)],
                "thresholds": {"warning": 0.01 if index % 5 == 0 else 1e9},
            }
        )
    for index in range(10):
        rules.append(
            {
                "signal": {"kind": "error_rate", "group_by": "route"},
                "window_seconds": WINDOWS[index % len(WINDOWS)],
                "thresholds": {"warning": 0.05},
            }
        )
    for index in range(10):
        rules.append(
            {
                "signal": {"kind": "integration_health"},
                "window_seconds": WINDOWS[index % len(WINDOWS)],
                "comparison": ">=",
                "thresholds": {"critical": 2},
            }
        )
    for index in range(10):
        kind = "ai_cost" if index % 2 else "tokens"
        rules.append(
            {
                "signal": {"kind": kind, "group_by": "model" if index % 3 else "none"},
                "window_seconds": WINDOWS[index % len(WINDOWS)],
                "thresholds": {"warning": 1e12},
            }
        )
    for index in range(9):
        rules.append(
            {
                "signal": {"kind": "error_rate", "integration": sorted(INTEGRATIONS)[index % 4]},
                "window_seconds": WINDOWS[index % len(WINDOWS)],
                "thresholds": {"warning": 0.5},
            }
        )
    rules.append(
        {"signal": {"kind": "budget_used", "budget": "day"}, "thresholds": {"warning": 80}}
    )
    return [
        Rule.model_validate(
            {**rule, "name": f"Rule{index:03d}", "channels": {"warning": [["ops"]]}}
        )
        for index, rule in enumerate(rules[:RULES])
    ]


def _load_rollups(store: SqlStore, count: int, origin: int) -> None:
    rng = np.random.default_rng(3)
    started = time.perf_counter()
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        spans = _spans(rng, first, size, count, origin)
        store.write(Batch("bench", "bench", rollups=build_rollups(spans)))
        sys.stderr.write(
            f"\r  rollups of {first + size:,} / {count:,} spans ({time.perf_counter() - started:.0f} s)"
        )
    sys.stderr.write("\n")


def _measure(count: int) -> tuple[float, int]:
    with sqlite_settings(ai_daily_budget=100.0, alert_default_rules=False) as settings:
        store = open_store(settings)
        assert isinstance(store, SqlStore)
        origin = int(time.time()) // 3600 * 3600 - 2 * DAY
        _load_rollups(store, count, origin)
        rules = _rules()
        configuration = AlertsConfiguration(
            [(rule, RuleSource.FILE, True) for rule in rules], {"ops": RecordingChannel("ops")}
        )
        alerts = AlertStore(store.engine)
        evaluator = Evaluator(settings, configuration, lambda: (store, alerts), holder="bench")
        now = origin + DAY + 30
        evaluator.tick(now)  # seeds the rules; alerts that breach are created
        timings = []
        for cycle in range(CYCLES):
            started = time.perf_counter()
            report = evaluator.tick(now + 15 * (cycle + 1))
            timings.append(time.perf_counter() - started)
            if not report.held or report.rules != RULES:
                raise RuntimeError(f"the cycle did not evaluate {RULES} rules: {report}")
        open_alerts = len(alerts.open_alerts())
        store.close()
    return statistics.median(timings), open_alerts


def run(quick: bool) -> list[Result]:
    size = 1_000_000 if quick else 10_000_000
    seconds, open_alerts = _measure(size)
    return [
        Result(
            f"alerts: one cycle of {RULES} rules, rollups of {size:,} spans "
            f"({open_alerts} alerts open)",
            "cycle",
            seconds * 1000,
            "evaluation interval",
            INTERVAL_SECONDS * 1000,
            "ms",
            "< 10 % of the 15 s interval",
            seconds < INTERVAL_SECONDS * 0.1,
        )
    ]


if __name__ == "__main__":
    main_for(run)
