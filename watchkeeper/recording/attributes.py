"""Attribute names that instrumentation writes and exposition, health and the API read.

One vocabulary in one place, so a request span recorded by the middleware and the Prometheus
metrics built from it can never disagree about a name.
"""

from __future__ import annotations

METHOD = "method"
ROUTE = "route"
"""The route template alone (``/api/v1/items/{item_id}``); the span's name adds the method."""
STATUS_CODE = "status_code"
REQUEST_SIZE = "request_size"
RESPONSE_SIZE = "response_size"
CLIENT = "client"
TIME_TO_FIRST_BYTE = "ttfb"
TIME_TO_FIRST_TOKEN = "ttft"
FINISH_REASON = "finish_reason"
STACK = "stack"
TOOL_CALLS = "tool_calls"
TOOL_SECONDS = "tool_seconds"
COST_STATUS = "cost_status"

UNMATCHED_ROUTE = "none"
"""The route of requests no route matched (prometheus-fastapi-instrumentator's label value)."""
UNMATCHED_REQUEST = "unmatched route"
"""The one span name for requests no route matched, whatever their method and path."""

# What resilience adds to an integration span (watchkeeper.resilience).
RESILIENCE_ATTEMPTS = "resilience.attempts"
RESILIENCE_RETRIES = "resilience.retries"
"""A list of ``{"attempt", "reason", "delay"}``: each retry, why, and how long it waited first."""
RESILIENCE_REJECTED = "resilience.rejected"
"""``circuit_open``, ``rate_limited`` or ``bulkhead_full``: why the service was not called."""
RESILIENCE_FALLBACK = "resilience.fallback"
"""``cache``, ``function`` or ``integration:<name>``: where the answer came from instead."""
RESILIENCE_REFRESHED = "resilience.refreshed"
"""``ok`` or ``failed``: credentials were refreshed after an unauthorised answer."""
RESILIENCE_WAITED = "resilience.waited"
"""Seconds the call waited for a rate limit or a concurrency slot."""
RESILIENCE_CACHE = "resilience.cache"
"""``fresh``: answered from the cache without calling the service."""
CIRCUIT_METRIC = "resilience.circuit"
"""The metric point of a circuit breaker's transition: its value the state entered (0 closed,
1 half-open, 2 open), its attributes ``integration``, ``from``, ``to`` and ``reason``."""
