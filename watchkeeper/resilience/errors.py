"""What a guarded call raises when resilience, not the service, refused it."""

from __future__ import annotations


class ResilienceError(Exception):
    """The service was not called: the call was refused to protect it, or the app."""

    reason = "refused"

    def __init__(self, integration: str, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.integration = integration
        self.retry_in = retry_in
        """Seconds after which trying again may succeed, when known."""


class CircuitOpen(ResilienceError):
    reason = "circuit_open"


class RateLimited(ResilienceError):
    reason = "rate_limited"


class BulkheadFull(ResilienceError):
    reason = "bulkhead_full"
