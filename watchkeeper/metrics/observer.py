"""Turns each batch the flush worker builds into Prometheus metric updates.

This runs on the flush worker, never on the request path: a request only appends its span to
the recorder's buffer, and the counting happens here, a batch at a time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from watchkeeper.metrics.dynamic import NamedMetrics
from watchkeeper.metrics.families import Families
from watchkeeper.metrics.labels import LabelGuard, prometheus_name
from watchkeeper.model.batch import Batch
from watchkeeper.model.events import MetricPoint, Span, SpanKind, ValidationResult
from watchkeeper.recording import attributes

# The attributes the ASGI instrumentation puts on request spans.
METHOD_ATTRIBUTE = attributes.METHOD
ROUTE_ATTRIBUTE = attributes.ROUTE
STATUS_CODE_ATTRIBUTE = attributes.STATUS_CODE
REQUEST_SIZE_ATTRIBUTE = attributes.REQUEST_SIZE
RESPONSE_SIZE_ATTRIBUTE = attributes.RESPONSE_SIZE

QUEUE_PREFIX = "queue."
CIRCUIT_METRIC = attributes.CIRCUIT_METRIC
SYSTEM_PREFIX = "system."
MAX_NAMED_METRICS = 200


class BatchMetrics:
    """A recorder batch observer: ``recorder.observers.append(BatchMetrics(...))``."""

    def __init__(self, registry: CollectorRegistry, max_label_values: int) -> None:
        self.families = Families.create(registry)
        overflow = self.families.label_overflow
        self._guard = LabelGuard(
            max_label_values, lambda metric, label: overflow.labels(metric, label).inc()
        )
        rejected = self.families.rejected_points

        def reject(reason: str) -> None:
            rejected.labels(reason).inc()

        # A business gauge is "set" by the app: the latest value from any worker is the answer.
        self._business = NamedMetrics(
            registry, self._guard, MAX_NAMED_METRICS, "livemostrecent", reject
        )
        # System figures describe each worker process, so each keeps its own series (pid label).
        self._system = NamedMetrics(registry, self._guard, MAX_NAMED_METRICS, "liveall", reject)

    def __call__(self, batch: Batch) -> None:
        for span in batch.spans:
            self._span(span)
        for point in batch.metrics:
            self._point(point)
        for validation in batch.validations:
            self._validation(validation)

    def _label(self, metric: str, label: str, value: str | None) -> str:
        return self._guard.value(metric, label, value)

    def _span(self, span: Span) -> None:
        kind = span.kind
        if kind is SpanKind.REQUEST:
            self._request(span)
        elif kind is SpanKind.INTEGRATION:
            self._integration(span)
        elif kind is SpanKind.TOOL:
            tool = self._label("watchkeeper_tool_calls", "tool", span.name)
            self.families.tool_calls.labels(tool, span.status.value).inc()
            self.families.tool_duration.labels(tool).observe(span.duration)
        elif kind is SpanKind.AGENT:
            agent = self._label("watchkeeper_agent_calls", "agent", span.name)
            self.families.agent_calls.labels(agent, span.status.value).inc()
            self.families.agent_duration.labels(agent).observe(span.duration)
        elif kind is SpanKind.QUEUE:
            queue = self._label("watchkeeper_queue", "queue", span.name)
            self.families.queue_wait.labels(queue).observe(span.duration)
        if span.model is not None or span.input_tokens or span.output_tokens:
            self._llm(span)

    def _request(self, span: Span) -> None:
        families = self.families
        attributes = span.attributes or {}
        # The route template (`/items/{item_id}`), never the raw path; the span's name adds the
        # method, which prometheus-fastapi-instrumentator keeps in a label of its own.
        route = attributes.get(ROUTE_ATTRIBUTE)
        handler = self._label(
            "http_requests", "handler", route if isinstance(route, str) else span.name
        )
        method = self._label("http_requests", "method", _text(attributes.get(METHOD_ATTRIBUTE)))
        status = _status_class(attributes.get(STATUS_CODE_ATTRIBUTE), span.is_error)
        families.http_requests.labels(method, status, handler).inc()
        families.http_request_duration.labels(method, handler).observe(span.duration)
        families.http_request_duration_highr.observe(span.duration)
        # As prometheus-fastapi-instrumentator does: a size that was not sent counts as 0.
        families.http_request_size.labels(handler).observe(
            _number(attributes.get(REQUEST_SIZE_ATTRIBUTE))
        )
        families.http_response_size.labels(handler).observe(
            _number(attributes.get(RESPONSE_SIZE_ATTRIBUTE))
        )

    def _integration(self, span: Span) -> None:
        integration = self._label("watchkeeper_integration", "integration", span.name)
        operation = self._label("watchkeeper_integration", "operation", span.operation)
        self.families.integration_calls.labels(integration, operation, span.status.value).inc()
        self.families.integration_duration.labels(integration, operation).observe(span.duration)
        found = span.attributes
        if found is not None and attributes.RESILIENCE_ATTEMPTS in found:
            self._resilience(integration, found)

    def _resilience(self, integration: str, found: dict[str, object]) -> None:
        """What resilience did during the call, as its span's attributes say."""
        families = self.families
        retries = found.get(attributes.RESILIENCE_RETRIES)
        if isinstance(retries, list):
            for retry in retries:
                reason = retry.get("reason") if isinstance(retry, dict) else None
                label = self._label("watchkeeper_retries", "reason", _text(reason))
                families.retries.labels(integration, label).inc()
        for key, family, metric, label in (
            (
                attributes.RESILIENCE_REJECTED,
                families.resilience_rejections,
                "watchkeeper_resilience_rejections",
                "reason",
            ),
            (attributes.RESILIENCE_FALLBACK, families.fallbacks, "watchkeeper_fallbacks", "kind"),
            (
                attributes.RESILIENCE_REFRESHED,
                families.credential_refreshes,
                "watchkeeper_credential_refreshes",
                "outcome",
            ),
        ):
            value = found.get(key)
            if value is not None:
                family.labels(integration, self._label(metric, label, _text(value))).inc()

    def _llm(self, span: Span) -> None:
        families = self.families
        model = self._label("watchkeeper_llm", "model", span.model)
        if span.input_tokens:
            families.llm_tokens.labels(model, "input").inc(span.input_tokens)
        if span.output_tokens:
            families.llm_tokens.labels(model, "output").inc(span.output_tokens)
        if span.cost is not None:
            families.llm_cost.labels(model).inc(max(span.cost, 0.0))
        elif span.cost_unknown:
            families.llm_cost_unknown.labels(model).inc()

    def _point(self, point: MetricPoint) -> None:
        name = point.name
        if name == CIRCUIT_METRIC:
            self._circuit(point)
        elif name.startswith(QUEUE_PREFIX):
            self._queue_point(point)
        elif name.startswith(SYSTEM_PREFIX):
            self._system.record(
                f"watchkeeper_system_{prometheus_name(name.removeprefix(SYSTEM_PREFIX))}",
                point.kind,
                point.value,
                point.attributes,
                f"System figure {name!r} reported by Watchkeeper.",
            )
        else:
            self._business.record(
                f"app_{prometheus_name(name)}",
                point.kind,
                point.value,
                point.attributes,
                f"Business metric {name!r} recorded by the application.",
            )

    def _circuit(self, point: MetricPoint) -> None:
        found = point.attributes or {}
        integration = self._label(
            "watchkeeper_circuit", "integration", _text(found.get("integration"))
        )
        families = self.families
        families.circuit_state.labels(integration).set(point.value)
        families.circuit_transitions.labels(
            integration, _text(found.get("from")) or "unknown", _text(found.get("to")) or "unknown"
        ).inc()

    def _queue_point(self, point: MetricPoint) -> None:
        # `queue.<name>.<figure>`; a queue's own name may contain dots.
        queue_name, _, figure = point.name.removeprefix(QUEUE_PREFIX).rpartition(".")
        queue = self._label("watchkeeper_queue", "queue", queue_name)
        families = self.families
        if figure == "size":
            families.queue_size.labels(queue).set(point.value)
        elif figure == "processed" and point.value >= 0:
            families.queue_processed.labels(queue).inc(point.value)
        elif figure == "failed" and point.value >= 0:
            families.queue_failed.labels(queue).inc(point.value)
        else:
            families.rejected_points.labels("unknown_queue_figure").inc()

    def _validation(self, result: ValidationResult) -> None:
        target = self._label("watchkeeper_validations", "target", result.target)
        validator = self._label("watchkeeper_validations", "validator", result.validator)
        self.families.validations.labels(target, validator).inc()
        if not result.passed:
            self.families.validation_failures.labels(target, validator, result.severity.value).inc()


def _status_class(code: object, is_error: bool) -> str:
    """``404`` → ``4xx``, the grouping prometheus-fastapi-instrumentator uses by default."""
    if isinstance(code, int) and 100 <= code <= 599:
        return f"{code // 100}xx"
    if isinstance(code, str) and code.isdigit() and len(code) == 3:
        return f"{code[0]}xx"
    # No status means the app raised before responding, which the server answers with a 500.
    return "5xx" if is_error else "unknown"


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
