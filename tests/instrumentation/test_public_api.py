"""``import watchkeeper``: every public name resolves, lazily, and importing starts nothing."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import watchkeeper

OUTBOUND = {
    "instrument_httpx": "watchkeeper.instrumentation.httpx",
    "instrument_openai": "watchkeeper.instrumentation.openai",
    "instrument_anthropic": "watchkeeper.instrumentation.anthropic",
}


@pytest.mark.parametrize("name", sorted(set(watchkeeper.__all__) - {"__version__"}))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(watchkeeper, name) is not None


def test_the_public_names_are_the_documented_ones() -> None:
    expected = {
        "instrument", "integration", "monitor", "tool", "agent", "snapshot", "start_session",
        "end_session", "register_validator", "validate", "counter", "gauge", "MonitoredQueue",
        "report_queue", "get_recorder", "configure", "Recorder", "Runtime", "Settings",
        "load_settings", "ConfigurationError", "SpanKind", "SpanStatus", "Severity", "__version__",
        "instrument_httpx", "instrument_openai", "instrument_anthropic", "MinimumScore",
        "RequiredFields", "NotEmpty", "UsesContext", "Rule", "resilient", "get_resilience",
        "Policy", "RetryPolicy", "BreakerPolicy", "RateLimitPolicy", "BulkheadPolicy",
        "FallbackPolicy", "ResilienceError", "CircuitOpen", "RateLimited", "BulkheadFull",
        "ResilientTransport", "AsyncResilientTransport", "set_fingerprint",
    }  # fmt: skip
    assert set(watchkeeper.__all__) == expected
    assert set(dir(watchkeeper)) >= expected


@pytest.mark.parametrize(("name", "module"), sorted(OUTBOUND.items()))
def test_outbound_instrumentation_comes_from_its_module(name: str, module: str) -> None:
    assert getattr(watchkeeper, name) is getattr(importlib.import_module(module), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'instrumentt'"):
        _ = watchkeeper.instrumentt  # type: ignore[attr-defined]


def test_importing_watchkeeper_starts_and_opens_nothing(tmp_path: Path) -> None:
    probe = (
        "import sys, threading; before = set(sys.modules); count = threading.active_count(); "
        "import watchkeeper; "
        "loaded = sorted(m for m in set(sys.modules) - before if m.startswith('watchkeeper')); "
        "print(threading.active_count() - count, ' '.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert result.stdout.split() == ["0", "watchkeeper", "watchkeeper._version"]
    assert list(tmp_path.iterdir()) == []
