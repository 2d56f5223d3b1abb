"""Business metrics named by the user (credits used, revenue, sign-ups) and queue figures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from watchkeeper.model.events import MetricKind
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder

_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:]{0,127}$")


def check_metric_name(name: object) -> str:
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise TypeError(
            "a metric name must be a string of letters, digits, '_', '.' or ':' that starts with "
            f"a letter or '_' (at most 128 characters), got {name!r}"
        )
    return name


def _check_value(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} needs a number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Counter:
    """A count that only goes up; each :meth:`add` is stored as an increment."""

    name: str
    recorder: Recorder | None = None

    def add(self, amount: float = 1, org_id: str | None = None, **labels: Any) -> None:
        value = _check_value(amount, f"counter {self.name!r}.add()")
        if value < 0:
            raise ValueError(f"counter {self.name!r} only goes up; got {amount!r}")
        recorder = self.recorder or get_recorder()
        recorder.metric(self.name, value, MetricKind.COUNTER, org_id, labels or None)


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value that goes up and down (active sessions, queue depth); each set is a sample."""

    name: str
    recorder: Recorder | None = None

    def set(self, value: float, org_id: str | None = None, **labels: Any) -> None:
        number = _check_value(value, f"gauge {self.name!r}.set()")
        recorder = self.recorder or get_recorder()
        recorder.metric(self.name, number, MetricKind.GAUGE, org_id, labels or None)


def counter(name: str, recorder: Recorder | None = None) -> Counter:
    return Counter(check_metric_name(name), recorder)


def gauge(name: str, recorder: Recorder | None = None) -> Gauge:
    return Gauge(check_metric_name(name), recorder)
