"""Keeping label values bounded, and turning Watchkeeper's metric names into Prometheus ones.

Every distinct label value is a separate time series in Prometheus, so a label fed from data
(a model name, a route, a user's business label) is capped: once a label of a metric has seen
``limit`` distinct values, new ones are reported as ``other`` and the collapse is counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable

OTHER = "other"
UNKNOWN = "unknown"

_INVALID_NAME_CHARACTERS = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_name(name: str) -> str:
    """``credits.used`` → ``credits_used``: Prometheus names allow letters, digits and ``_``."""
    cleaned = _INVALID_NAME_CHARACTERS.sub("_", name)
    return cleaned if not cleaned[:1].isdigit() else f"_{cleaned}"


OverflowCounter = Callable[[str, str], None]
"""Called with (metric, label) each time a value is collapsed into ``other``."""


class LabelGuard:
    """Caps the distinct values of each (metric, label); only the flush worker calls it."""

    def __init__(self, limit: int, on_overflow: OverflowCounter) -> None:
        self._limit = limit
        self._on_overflow = on_overflow
        self._seen: dict[tuple[str, str], set[str]] = {}

    def value(self, metric: str, label: str, value: str | None) -> str:
        if value is None or value == "":
            return UNKNOWN
        seen = self._seen.setdefault((metric, label), set())
        if value in seen:
            return value
        if len(seen) >= self._limit:
            self._on_overflow(metric, label)
            return OTHER
        seen.add(value)
        return value
