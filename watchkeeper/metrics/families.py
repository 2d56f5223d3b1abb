"""The fixed set of metrics Watchkeeper exports, with their names, labels and buckets.

Request metrics reuse prometheus-fastapi-instrumentator's names, labels and buckets so dashboards
built for it keep working; everything else Watchkeeper adds carries the ``watchkeeper_`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

# prometheus-fastapi-instrumentator's defaults for its two latency histograms.
REQUEST_DURATION_BUCKETS = (0.1, 0.5, 1.0)
REQUEST_DURATION_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
# AI calls and queued work take from milliseconds to minutes.
SLOW_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True, slots=True)
class Families:
    http_requests: Counter
    http_request_duration: Histogram
    http_request_duration_highr: Histogram
    http_request_size: Summary
    http_response_size: Summary
    integration_calls: Counter
    integration_duration: Histogram
    llm_tokens: Counter
    llm_cost: Counter
    llm_cost_unknown: Counter
    tool_calls: Counter
    tool_duration: Histogram
    agent_calls: Counter
    agent_duration: Histogram
    queue_size: Gauge
    queue_wait: Histogram
    queue_processed: Counter
    queue_failed: Counter
    validations: Counter
    validation_failures: Counter
    label_overflow: Counter
    rejected_points: Counter
    retries: Counter
    resilience_rejections: Counter
    fallbacks: Counter
    credential_refreshes: Counter
    circuit_state: Gauge
    circuit_transitions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Families:
        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, registry=registry)

        def histogram(
            name: str, documentation: str, buckets: tuple[float, ...], *labels: str
        ) -> Histogram:
            return Histogram(name, documentation, labels, registry=registry, buckets=buckets)

        return cls(
            http_requests=counter(
                "http_requests_total",
                "Total number of requests by method, status and handler.",
                "method",
                "status",
                "handler",
            ),
            http_request_duration=histogram(
                "http_request_duration_seconds",
                "Latency with only few buckets by handler. "
                "Made to be only used if aggregation by handler is important. ",
                REQUEST_DURATION_BUCKETS,
                "method",
                "handler",
            ),
            http_request_duration_highr=histogram(
                "http_request_duration_highr_seconds",
                "Latency with many buckets but no API specific labels. "
                "Made for more accurate percentile calculations. ",
                REQUEST_DURATION_HIGHR_BUCKETS,
            ),
            http_request_size=Summary(
                "http_request_size_bytes",
                "Content length of incoming requests by handler. "
                "Only value of header is respected. Otherwise ignored. "
                "No percentile calculated. ",
                ("handler",),
                registry=registry,
            ),
            http_response_size=Summary(
                "http_response_size_bytes",
                "Content length of outgoing responses by handler. "
                "Only value of header is respected. Otherwise ignored. "
                "No percentile calculated. ",
                ("handler",),
                registry=registry,
            ),
            integration_calls=counter(
                "watchkeeper_integration_calls_total",
                "Calls to external services (AI providers, APIs) by integration, operation "
                "and status.",
                "integration",
                "operation",
                "status",
            ),
            integration_duration=histogram(
                "watchkeeper_integration_duration_seconds",
                "Duration of calls to external services.",
                SLOW_CALL_BUCKETS,
                "integration",
                "operation",
            ),
            llm_tokens=counter(
                "watchkeeper_llm_tokens_total",
                "Language-model tokens used, by model and direction (input or output).",
                "model",
                "direction",
            ),
            llm_cost=counter(
                "watchkeeper_llm_cost_usd_total",
                "Cost of language-model calls in US dollars, where the price is known.",
                "model",
            ),
            llm_cost_unknown=counter(
                "watchkeeper_llm_cost_unknown_total",
                "Language-model calls that used tokens at a price Watchkeeper does not know.",
                "model",
            ),
            tool_calls=counter(
                "watchkeeper_tool_calls_total", "Tool calls by tool and status.", "tool", "status"
            ),
            tool_duration=histogram(
                "watchkeeper_tool_duration_seconds",
                "Duration of tool calls.",
                SLOW_CALL_BUCKETS,
                "tool",
            ),
            agent_calls=counter(
                "watchkeeper_agent_calls_total",
                "Agent steps by agent and status.",
                "agent",
                "status",
            ),
            agent_duration=histogram(
                "watchkeeper_agent_duration_seconds",
                "Duration of agent steps.",
                SLOW_CALL_BUCKETS,
                "agent",
            ),
            # Each worker process owns its own in-memory queues, so their sizes add up.
            queue_size=Gauge(
                "watchkeeper_queue_size",
                "Items waiting in a queue, as last sampled.",
                ("queue",),
                registry=registry,
                multiprocess_mode="livesum",
            ),
            queue_wait=histogram(
                "watchkeeper_queue_wait_seconds",
                "Time items waited in a queue before being taken.",
                SLOW_CALL_BUCKETS,
                "queue",
            ),
            queue_processed=counter(
                "watchkeeper_queue_processed_total", "Queue items processed.", "queue"
            ),
            queue_failed=counter(
                "watchkeeper_queue_failed_total", "Queue items that failed.", "queue"
            ),
            validations=counter(
                "watchkeeper_validations_total",
                "Validator runs on AI answers, by target and validator.",
                "target",
                "validator",
            ),
            validation_failures=counter(
                "watchkeeper_validation_failures_total",
                "Validator runs that failed, by target, validator and severity.",
                "target",
                "validator",
                "severity",
            ),
            label_overflow=counter(
                "watchkeeper_metrics_label_overflow_total",
                "Label values reported as 'other' because a label had too many distinct values.",
                "metric",
                "label",
            ),
            rejected_points=counter(
                "watchkeeper_metrics_rejected_points_total",
                "Metric points not exported, by reason.",
                "reason",
            ),
            retries=counter(
                "watchkeeper_retries_total",
                "Attempts of integration calls made again, by integration and reason.",
                "integration",
                "reason",
            ),
            resilience_rejections=counter(
                "watchkeeper_resilience_rejections_total",
                "Integration calls refused without calling the service (circuit_open, "
                "rate_limited, bulkhead_full).",
                "integration",
                "reason",
            ),
            fallbacks=counter(
                "watchkeeper_fallbacks_total",
                "Integration calls answered by a fallback (cache, function, integration:…).",
                "integration",
                "kind",
            ),
            credential_refreshes=counter(
                "watchkeeper_credential_refreshes_total",
                "Credentials refreshed after an unauthorised answer, by outcome.",
                "integration",
                "outcome",
            ),
            # With Redis every replica sees one breaker: the latest transition is its state.
            circuit_state=Gauge(
                "watchkeeper_circuit_state",
                "Circuit breaker state as of its latest transition: 0 closed, 1 half-open, 2 open.",
                ("integration",),
                registry=registry,
                multiprocess_mode="mostrecent",
            ),
            circuit_transitions=counter(
                "watchkeeper_circuit_transitions_total",
                "Circuit breaker transitions, by integration and states left and entered.",
                "integration",
                "from",
                "to",
            ),
        )
