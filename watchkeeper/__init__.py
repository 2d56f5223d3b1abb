"""Watchkeeper: traces, costs and health for FastAPI apps that call AI services.

    import watchkeeper
    watchkeeper.instrument(app)

Names are imported on first use, so ``import watchkeeper`` itself starts nothing and opens nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from watchkeeper._version import __version__

if TYPE_CHECKING:
    from watchkeeper.config import ConfigurationError, Settings, load_settings
    from watchkeeper.instrumentation.anthropic import instrument_anthropic
    from watchkeeper.instrumentation.decorators import agent, integration, monitor, tool
    from watchkeeper.instrumentation.fingerprints import set_fingerprint
    from watchkeeper.instrumentation.httpx import instrument_httpx
    from watchkeeper.instrumentation.metrics import counter, gauge
    from watchkeeper.instrumentation.openai import instrument_openai
    from watchkeeper.instrumentation.queues import MonitoredQueue, report_queue
    from watchkeeper.instrumentation.sessions import end_session, snapshot, start_session
    from watchkeeper.instrumentation.validation import (
        MinimumScore,
        NotEmpty,
        RequiredFields,
        Rule,
        UsesContext,
        register_validator,
        validate,
    )
    from watchkeeper.model.events import Severity, SpanKind, SpanStatus
    from watchkeeper.recording.default import get_recorder
    from watchkeeper.recording.recorder import Recorder
    from watchkeeper.resilience.calls import resilient
    from watchkeeper.resilience.errors import (
        BulkheadFull,
        CircuitOpen,
        RateLimited,
        ResilienceError,
    )
    from watchkeeper.resilience.policy import (
        BreakerPolicy,
        BulkheadPolicy,
        FallbackPolicy,
        Policy,
        RateLimitPolicy,
        RetryPolicy,
    )
    from watchkeeper.resilience.registry import get_resilience
    from watchkeeper.resilience.transport import AsyncResilientTransport, ResilientTransport
    from watchkeeper.runtime.runtime import Runtime, configure
    from watchkeeper.wiring import instrument

_WHERE = {
    "ConfigurationError": "watchkeeper.config",
    "Settings": "watchkeeper.config",
    "load_settings": "watchkeeper.config",
    "instrument": "watchkeeper.wiring",
    "instrument_anthropic": "watchkeeper.instrumentation.anthropic",
    "instrument_httpx": "watchkeeper.instrumentation.httpx",
    "instrument_openai": "watchkeeper.instrumentation.openai",
    "agent": "watchkeeper.instrumentation.decorators",
    "integration": "watchkeeper.instrumentation.decorators",
    "monitor": "watchkeeper.instrumentation.decorators",
    "tool": "watchkeeper.instrumentation.decorators",
    "counter": "watchkeeper.instrumentation.metrics",
    "gauge": "watchkeeper.instrumentation.metrics",
    "MonitoredQueue": "watchkeeper.instrumentation.queues",
    "report_queue": "watchkeeper.instrumentation.queues",
    "end_session": "watchkeeper.instrumentation.sessions",
    "set_fingerprint": "watchkeeper.instrumentation.fingerprints",
    "snapshot": "watchkeeper.instrumentation.sessions",
    "start_session": "watchkeeper.instrumentation.sessions",
    "MinimumScore": "watchkeeper.instrumentation.validation",
    "NotEmpty": "watchkeeper.instrumentation.validation",
    "RequiredFields": "watchkeeper.instrumentation.validation",
    "Rule": "watchkeeper.instrumentation.validation",
    "UsesContext": "watchkeeper.instrumentation.validation",
    "register_validator": "watchkeeper.instrumentation.validation",
    "validate": "watchkeeper.instrumentation.validation",
    "configure": "watchkeeper.runtime.runtime",
    "get_recorder": "watchkeeper.recording.default",
    "Severity": "watchkeeper.model.events",
    "SpanKind": "watchkeeper.model.events",
    "SpanStatus": "watchkeeper.model.events",
    "Recorder": "watchkeeper.recording.recorder",
    "Runtime": "watchkeeper.runtime.runtime",
    "resilient": "watchkeeper.resilience.calls",
    "BulkheadFull": "watchkeeper.resilience.errors",
    "CircuitOpen": "watchkeeper.resilience.errors",
    "RateLimited": "watchkeeper.resilience.errors",
    "ResilienceError": "watchkeeper.resilience.errors",
    "BreakerPolicy": "watchkeeper.resilience.policy",
    "BulkheadPolicy": "watchkeeper.resilience.policy",
    "FallbackPolicy": "watchkeeper.resilience.policy",
    "Policy": "watchkeeper.resilience.policy",
    "RateLimitPolicy": "watchkeeper.resilience.policy",
    "RetryPolicy": "watchkeeper.resilience.policy",
    "get_resilience": "watchkeeper.resilience.registry",
    "AsyncResilientTransport": "watchkeeper.resilience.transport",
    "ResilientTransport": "watchkeeper.resilience.transport",
}

__all__ = [
    "AsyncResilientTransport",
    "BreakerPolicy",
    "BulkheadFull",
    "BulkheadPolicy",
    "CircuitOpen",
    "ConfigurationError",
    "FallbackPolicy",
    "MinimumScore",
    "MonitoredQueue",
    "NotEmpty",
    "Policy",
    "RateLimitPolicy",
    "RateLimited",
    "Recorder",
    "RequiredFields",
    "ResilienceError",
    "ResilientTransport",
    "RetryPolicy",
    "Rule",
    "Runtime",
    "Settings",
    "Severity",
    "SpanKind",
    "SpanStatus",
    "UsesContext",
    "__version__",
    "agent",
    "configure",
    "counter",
    "end_session",
    "gauge",
    "get_recorder",
    "get_resilience",
    "instrument",
    "instrument_anthropic",
    "instrument_httpx",
    "instrument_openai",
    "integration",
    "load_settings",
    "monitor",
    "register_validator",
    "report_queue",
    "resilient",
    "set_fingerprint",
    "snapshot",
    "start_session",
    "tool",
    "validate",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
    return getattr(import_module(module), name)
