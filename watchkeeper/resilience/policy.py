"""What one integration's calls may do when its service misbehaves: the policy model.

A policy is plain data, so it can come from code, from the resilience file (TOML or YAML) and
from ``WATCHKEEPER_RESILIENCE_POLICIES``, and be shown as JSON. What cannot be data (a fallback
function, a credential refresh hook, a cache key) is a :class:`Hooks`, given in code only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRY_ON = (
    # A name without a dot matches a class of that name from any package (httpx and httpx2
    # share theirs); "package.Name" only that package's.
    "TimeoutError",
    "ConnectionError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "RemoteProtocolError",
    "APIConnectionError",
    "APITimeoutError",
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Part):
    attempts: int = Field(3, ge=1, le=20, description="Tries in all, the first included.")
    base_delay: float = Field(
        0.5, gt=0, description="Seconds: the n-th retry waits up to base_delay * 2**(n-1)."
    )
    max_delay: float = Field(30.0, gt=0, description="Longest wait between two attempts.")
    statuses: frozenset[int] = Field(
        DEFAULT_RETRY_STATUSES, description="HTTP statuses worth another attempt."
    )
    on: tuple[str, ...] = Field(
        DEFAULT_RETRY_ON, description="Exception class names worth another attempt."
    )
    idempotent: bool | None = Field(
        None,
        description="Whether a call may run twice: then a failure after the request may have "
        "been acted on (a 500, a read timeout) is retried too. Unset: true for GET, HEAD, "
        "OPTIONS, PUT and DELETE through the transport, false otherwise. A failure the "
        "service surely did not act on (refused connection, 429, 503) is always retried.",
    )
    retry_after_cap: float = Field(
        60.0, ge=0, description="Longest Retry-After honoured; a longer one is not waited for."
    )


class BreakerPolicy(_Part):
    enabled: bool = True
    failure_rate: float = Field(
        0.5, gt=0, le=1, description="Failed share of the window's calls that opens it."
    )
    minimum_calls: int = Field(10, ge=1, description="Calls in the window before it judges.")
    window: float = Field(60.0, gt=0, description="Seconds of calls judged.")
    consecutive_failures: int | None = Field(
        5, ge=1, description="Failures in a row that open it whatever the rate (null: off)."
    )
    cool_down: float = Field(30.0, gt=0, description="Seconds open before trial calls.")
    half_open_calls: int = Field(
        1, ge=1, description="Trial calls let through half-open; all must succeed to close."
    )


class RateLimitPolicy(_Part):
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(
        None, ge=1, description="Language-model tokens (input and output) per minute."
    )
    wait: float = Field(
        0.0, ge=0, description="Seconds a call may wait for room; 0 fails fast (RateLimited)."
    )


class BulkheadPolicy(_Part):
    max_concurrent: int | None = Field(
        None, ge=1, description="Calls in flight at once in this process (null: no limit)."
    )
    wait: float = Field(
        0.0, ge=0, description="Seconds a call may wait for a slot; 0 fails fast (BulkheadFull)."
    )


class FallbackPolicy(_Part):
    cache: bool = Field(False, description="Answer from the last good answer for the same key.")
    stale_if_error: float = Field(
        86_400.0, gt=0, description="Oldest cached answer (seconds) served when calls fail."
    )
    fresh_for: float = Field(
        0.0, ge=0, description="Answers this young (seconds) are served without a call."
    )
    max_entries: int = Field(1_000, ge=1, description="Cached answers kept per integration.")
    to: str | None = Field(
        None, description="Another integration whose policy runs the fallback function."
    )


class Policy(_Part):
    """Everything that guards one integration's calls; every part has a working default."""

    timeout: float | None = Field(
        30.0, gt=0, description="Seconds one attempt may take (null: no limit)."
    )
    deadline: float | None = Field(
        120.0, gt=0, description="Seconds the whole call may take, retries included."
    )
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    bulkhead: BulkheadPolicy = BulkheadPolicy()
    fallback: FallbackPolicy = FallbackPolicy()
    refresh_on: frozenset[int] = Field(
        frozenset({401}), description="Statuses after which credentials are refreshed once."
    )
    hosts: tuple[str, ...] = Field(
        (), description="Hosts whose calls through the transport get this policy."
    )

    @model_validator(mode="after")
    def _deadline_fits(self) -> Policy:
        if self.timeout is not None and self.deadline is not None and self.deadline < self.timeout:
            raise ValueError(
                f"deadline ({self.deadline:g} s) must not be shorter than timeout "
                f"({self.timeout:g} s)"
            )
        return self


Refresh = Callable[[], "str | Awaitable[str | None] | None"]
"""Refreshes a credential; may return the new bearer token (the transport then sends it)."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """The code-only half of a policy."""

    fallback: Callable[..., Any] | None = None
    """Called with the call's arguments when the call fails (under ``policy.fallback.to``)."""
    refresh: Refresh | None = None
    key: Callable[..., str] | None = None
    """The cache key of a call, from its arguments; by default their ``repr``."""

    def merged(self, other: Hooks) -> Hooks:
        """These hooks, with ``other``'s where it has one."""
        return Hooks(
            other.fallback or self.fallback, other.refresh or self.refresh, other.key or self.key
        )


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s values, nested tables merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def overridden(policy: Policy, override: dict[str, Any]) -> Policy:
    """``policy`` with the fields ``override`` sets (a partial policy, as in the file)."""
    if not override:
        return policy
    return Policy.model_validate(merge(policy.model_dump(), override))
