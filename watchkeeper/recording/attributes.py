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
