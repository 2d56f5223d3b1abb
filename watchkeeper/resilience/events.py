"""Everything resilience does, made visible: on the integration span, as metric points, and to
listeners (the live feed).

A call's retries, rejection, fallback and refresh go on its integration span, from which the
Prometheus exporter counts them. A breaker's transition is no call's: it is a metric point
(stored, so the dashboard draws each breaker's timeline, and exported as the circuit state).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from watchkeeper.health.circuits import CircuitState
from watchkeeper.model.events import MetricKind
from watchkeeper.recording import attributes
from watchkeeper.recording.default import get_recorder
from watchkeeper.recording.recorder import Recorder
from watchkeeper.recording.spans import ActiveSpan
from watchkeeper.resilience.breaker import Transition

logger = logging.getLogger("watchkeeper")

Message = dict[str, Any]
Listener = Callable[[Message], None]

CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class CallRecord:
    """What resilience did during one call, written onto its span when the call ends."""

    __slots__ = (
        "attempts",
        "cache",
        "failure",
        "fallback",
        "refreshed",
        "rejected",
        "retries",
        "waited",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.retries: list[dict[str, Any]] | None = None
        self.rejected: str | None = None
        self.fallback: str | None = None
        self.refreshed: str | None = None
        self.waited = 0.0
        self.cache: str | None = None
        self.failure: BaseException | None = None
        """What the fallback answered for: the call still failed, and its span says so."""

    def write(self, span: ActiveSpan) -> None:
        span.set_attribute(attributes.RESILIENCE_ATTEMPTS, self.attempts)
        if self.retries:
            span.set_attribute(attributes.RESILIENCE_RETRIES, self.retries)
        if self.rejected is not None:
            span.set_attribute(attributes.RESILIENCE_REJECTED, self.rejected)
        if self.fallback is not None:
            span.set_attribute(attributes.RESILIENCE_FALLBACK, self.fallback)
            if self.failure is not None:
                span.record_error(self.failure)
        if self.refreshed is not None:
            span.set_attribute(attributes.RESILIENCE_REFRESHED, self.refreshed)
        if self.waited:
            span.set_attribute(attributes.RESILIENCE_WAITED, round(self.waited, 6))
        if self.cache is not None:
            span.set_attribute(attributes.RESILIENCE_CACHE, self.cache)


class Events:
    """Where resilience reports; listeners must be quick and must not raise (they are guarded)."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder
        self.listeners: list[Listener] = []

    def _recorder(self) -> Recorder:
        return self.recorder or get_recorder()

    def publish(self, event: str, integration: str, **details: Any) -> None:
        if not self.listeners:
            return
        message: Message = {"event": event, "integration": integration, "time": time.time()}
        message.update(details)
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception as error:
                self._recorder().report_internal_error("publishing a resilience event", error)

    def transition(self, change: Transition | None) -> None:
        if change is None:
            return
        recorder = self._recorder()
        try:
            recorder.metric(
                attributes.CIRCUIT_METRIC,
                CIRCUIT_VALUES[change.after],
                MetricKind.GAUGE,
                attributes={
                    "integration": change.integration,
                    "from": change.before.value,
                    "to": change.after.value,
                    "reason": change.reason,
                },
            )
        except Exception as error:
            recorder.report_internal_error("recording a circuit transition", error)
        log = logger.warning if change.after is CircuitState.OPEN else logger.info
        log(
            "Watchkeeper: the %s circuit is %s (%s)",
            change.integration,
            change.after.value.replace("_", "-"),
            change.reason,
        )
        self.publish(
            "circuit",
            change.integration,
            before=change.before.value,
            after=change.after.value,
            reason=change.reason,
        )
