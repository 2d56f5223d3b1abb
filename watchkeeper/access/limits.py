"""Per-key rate limits: requests per minute, by role unless the key has its own.

Counted by the ``limits`` package's sliding-window counter (as resilience's rate limits are), in
Redis when ``WATCHKEEPER_REDIS_URL`` is set, so every replica draws from one allowance per key;
otherwise in the process. When Redis cannot answer, the process counts on its own until it can:
a Redis outage never locks callers out.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from watchkeeper.access.principal import Principal
from watchkeeper.access.roles import Role, rate_limits
from watchkeeper.config import Settings

logger = logging.getLogger("watchkeeper")

NAMESPACE = "watchkeeper-key"
REDIS_RETRY_AFTER = 10.0
"""Seconds of counting in the process after Redis failed, before Redis is asked again."""


class RateLimited(Exception):
    """A key over its limit: a 429 with ``Retry-After``."""

    def __init__(self, retry_after: float, limit: int) -> None:
        super().__init__(f"this key may make {limit} requests a minute; retry later")
        self.message = str(self)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


@dataclass(frozen=True)
class _Counter:
    limiter: SlidingWindowCounterRateLimiter

    def take(self, item: RateLimitItem, key_id: str) -> float:
        """0 when there was room (and it was taken), else seconds until there is."""
        if self.limiter.hit(item, NAMESPACE, key_id):
            return 0.0
        reset = self.limiter.get_window_stats(item, NAMESPACE, key_id).reset_time
        return max(reset - time.time(), 0.001)


class KeyRateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._limits = rate_limits(settings)
        self._memory = _Counter(SlidingWindowCounterRateLimiter(MemoryStorage()))
        self._shared: _Counter | None = None
        self._redis_down_until = 0.0
        if settings.redis_url is not None:
            self._shared = _Counter(SlidingWindowCounterRateLimiter(_redis(settings)))

    def limit_of(self, principal: Principal) -> int:
        return principal.rate_limit or self._limits[principal.role]

    def take(self, principal: Principal) -> None:
        """Count one request of ``principal``; :class:`RateLimited` if it is over its limit."""
        if principal.key_id == "open":
            return
        limit = self.limit_of(principal)
        item = RateLimitItemPerMinute(limit)
        wait = self._take(item, principal.key_id)
        if wait:
            raise RateLimited(wait, limit)

    def _take(self, item: RateLimitItem, key_id: str) -> float:
        if self._shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                return self._shared.take(item, key_id)
            except Exception as error:  # redis-py's errors, and limits' own, vary by version
                self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER
                logger.warning(
                    "Watchkeeper could not reach Redis for key rate limits (%s); counting in "
                    "this process for %g s",
                    type(error).__name__,
                    REDIS_RETRY_AFTER,
                )
        return self._memory.take(item, key_id)

    @property
    def roles(self) -> dict[Role, int]:
        return dict(self._limits)


def _redis(settings: Settings) -> Storage:
    url = settings.redis_url.get_secret_value() if settings.redis_url else ""
    timeout = settings.redis_timeout
    return RedisStorage(
        url, key_prefix=NAMESPACE, socket_timeout=timeout, socket_connect_timeout=timeout
    )
