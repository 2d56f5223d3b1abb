"""When to try again: which failures are worth another attempt, and how long to wait first.

The delays are tenacity's ``wait_random_exponential`` (exponential backoff with full jitter);
its retry controller is not used: each attempt here must also pass the circuit breaker, the
rate limit and the deadline and be recorded, and the first attempt, which nearly always
succeeds, must cost no more than those checks.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, Retrying, wait_random_exponential

from watchkeeper.resilience.policy import RetryPolicy

# Failures the service surely did not act on: no connection was made, or it refused the work.
_NOT_ACTED_ON_ERRORS = frozenset(
    {"ConnectError", "ConnectTimeout", "PoolTimeout", "ConnectionRefusedError"}
)
_NOT_ACTED_ON_STATUSES = frozenset({429, 503})
_RETRYING = Retrying()
"""Only there for tenacity's wait strategies, which read the attempt number off a call state."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_CAUSE_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure of the service (not of the caller's own code): it counts against the breaker."""

    reason: str
    """``status 503``, ``ConnectError``… for spans, metrics and the live feed."""
    acted_on: bool
    """The service may have done the work: retried only when the call is idempotent."""
    retryable: bool
    status: int | None = None
    retry_after: float | None = None

    def worth_retrying(self, idempotent: bool) -> bool:
        return self.retryable and (idempotent or not self.acted_on)


def backoff(retry: int, policy: RetryPolicy) -> float:
    """Seconds before the ``retry``-th retry (1 for the first)."""
    wait = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)
    state = RetryCallState(_RETRYING, None, (), {})
    state.attempt_number = retry
    return float(wait(state))


def delay_before(retry: int, failure: Failure, policy: RetryPolicy) -> float | None:
    """How long to wait before retrying, or ``None`` when a Retry-After is beyond the cap."""
    if failure.retry_after is not None:
        if failure.retry_after > policy.retry_after_cap:
            return None
        return failure.retry_after
    return backoff(retry, policy)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks to wait, if any."""
    if headers is None:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def status_failure(status: int, headers: Any, policy: RetryPolicy) -> Failure | None:
    """A response's status as a failure: 5xx and 429 are the service's, other 4xx the caller's."""
    if status < 500 and status != 429:
        return None
    return Failure(
        f"status {status}",
        acted_on=status not in _NOT_ACTED_ON_STATUSES,
        retryable=status in policy.statuses,
        status=status,
        retry_after=parse_retry_after(headers),
    )


def error_failure(error: BaseException, policy: RetryPolicy) -> Failure | None:
    """An exception as a failure of the service, or ``None`` for the caller's own error."""
    status = _status_of(error)
    if status is not None:
        response = getattr(error, "response", None)
        return status_failure(status, getattr(response, "headers", None), policy)
    names = _class_names(error)
    if names.isdisjoint(policy.on):
        return None
    return Failure(
        type(error).__name__,
        acted_on=not _surely_not_sent(error),
        retryable=True,
    )


def is_unauthorized(error: BaseException, statuses: frozenset[int]) -> bool:
    return _status_of(error) in statuses


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _class_names(error: BaseException) -> set[str]:
    """``Name`` and ``package.Name`` for every class ``error`` is an instance of."""
    found: set[str] = set()
    for cls in type(error).__mro__:
        found.add(cls.__qualname__)
        found.add(f"{cls.__module__.split('.')[0]}.{cls.__qualname__}")
    return found


def _surely_not_sent(error: BaseException) -> bool:
    """A connection that was never made (SDKs wrap it: their error's cause says so)."""
    current: BaseException | None = error
    for _ in range(_CAUSE_DEPTH):
        if current is None:
            return False
        if any(cls.__qualname__ in _NOT_ACTED_ON_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False
