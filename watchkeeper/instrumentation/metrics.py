"""Business metrics named by the user (credits used, revenue, sign-ups) and queue figures.

Misuse (a name that is not a metric name, an amount that is not a number) never raises into the
app: it is reported as an internal error, counted, and the point is not recorded. Under
Watchkeeper's strict mode (``raise_internal_errors``, as in tests) it raises at once, with the
message saying what was wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
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
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} needs a finite number, got {value!r}")
    return number


def _misused(recorder: Recorder | None, where: str, error: Exception) -> None:
    """Contain the app's misuse: counted and logged, raised only in strict mode."""
    (recorder or get_recorder()).report_internal_error(where, error)


@dataclass(frozen=True, slots=True)
class Counter:
    """A count that only goes up; each :meth:`add` is stored as an increment."""

    name: str
    recorder: Recorder | None = None
    usable: bool = field(default=True, repr=False)
    """``False`` for a counter made with a bad name: it records nothing."""

    def add(self, amount: float = 1, org_id: str | None = None, **labels: Any) -> None:
        where = f"counter {self.name!r}.add()"
        try:
            value = _check_value(amount, where)
            if value < 0:
                raise ValueError(f"counter {self.name!r} only goes up; got {amount!r}")
        except (TypeError, ValueError) as error:
            _misused(self.recorder, where, error)
            return
        if not self.usable:
            return
        recorder = self.recorder or get_recorder()
        recorder.metric(self.name, value, MetricKind.COUNTER, org_id, labels or None)


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value that goes up and down (active sessions, queue depth); each set is a sample."""

    name: str
    recorder: Recorder | None = None
    usable: bool = field(default=True, repr=False)
    """``False`` for a gauge made with a bad name: it records nothing."""

    def set(self, value: float, org_id: str | None = None, **labels: Any) -> None:
        where = f"gauge {self.name!r}.set()"
        try:
            number = _check_value(value, where)
        except (TypeError, ValueError) as error:
            _misused(self.recorder, where, error)
            return
        if not self.usable:
            return
        recorder = self.recorder or get_recorder()
        recorder.metric(self.name, number, MetricKind.GAUGE, org_id, labels or None)


def counter(name: str, recorder: Recorder | None = None) -> Counter:
    try:
        return Counter(check_metric_name(name), recorder)
    except TypeError as error:
        _misused(recorder, "counter()", error)
        return Counter(str(name), recorder, usable=False)


def gauge(name: str, recorder: Recorder | None = None) -> Gauge:
    try:
        return Gauge(check_metric_name(name), recorder)
    except TypeError as error:
        _misused(recorder, "gauge()", error)
        return Gauge(str(name), recorder, usable=False)
