"""Breakers, rate-limit counters and cached answers in Redis, shared by every replica.

Each breaker operation is one Lua script, run atomically by Redis: the twin of
:mod:`watchkeeper.resilience.breaker`'s functions (the same scenarios test both). Rate limits are
the ``limits`` package's sliding-window counters in its Redis storage. Cached answers are JSON
(``Unstorable`` otherwise: the failover keeps those in memory), bounded per integration by a
sorted set of their ages.

Every client has short socket timeouts; an error is never handled here but by
:class:`~watchkeeper.resilience.failover.FailoverState`, which then uses this process's memory.
The ``redis`` package is the ``redis`` extra, imported only when ``WATCHKEEPER_REDIS_URL`` is set.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

import orjson
from limits import RateLimitItem
from limits.aio.storage import RedisStorage as AsyncLimitsStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as AsyncLimiter
from limits.storage import RedisStorage as LimitsStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from watchkeeper.health.circuits import CircuitState
from watchkeeper.resilience.breaker import BUCKETS, Admission, Transition, bucket_width
from watchkeeper.resilience.policy import BreakerPolicy, FallbackPolicy
from watchkeeper.resilience.state import CLOSED_VIEW, Cached, CircuitView, Unstorable

try:
    import redis
    import redis.asyncio as redis_asyncio
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError(
        "WATCHKEEPER_REDIS_URL needs the redis package: pip install 'watchkeeper[redis]'"
    ) from missing

PREFIX = "watchkeeper:resilience"
KEY_LIFETIME = 86_400
"""Seconds a breaker or window key outlives its last use: integrations come and go."""

_ADMIT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local cool = tonumber(ARGV[2])
local trial_calls = tonumber(ARGV[3])
local found = redis.call('HMGET', key, 'state', 'changed_at', 'trials')
local state = found[1] or 'closed'
if state == 'closed' then return {'closed', 1, 0, '0', ''} end
local waited = now - (tonumber(found[2]) or 0)
local trials = tonumber(found[3]) or 0
if state == 'open' then
  if waited < cool then return {'open', 0, 0, tostring(cool - waited), ''} end
  redis.call('HSET', key, 'state', 'half_open', 'changed_at', ARGV[1], 'trials', 1,
             'trial_successes', 0)
  redis.call('EXPIRE', key, ARGV[4])
  return {'half_open', 1, 1, '0', 'open'}
end
if trials < trial_calls or waited >= cool then
  if waited >= cool then
    redis.call('HSET', key, 'changed_at', ARGV[1], 'trials', 0, 'trial_successes', 0)
    trials = 0
  end
  redis.call('HSET', key, 'trials', trials + 1)
  return {'half_open', 1, 1, '0', ''}
end
local left = cool - waited
if left < 0 then left = 0 end
return {'half_open', 0, 0, tostring(left), ''}
"""

_RECORD = """
local key, window = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local ok, trial = ARGV[2] == '1', ARGV[3] == '1'
local width, buckets = tonumber(ARGV[4]), tonumber(ARGV[5])
local minimum, rate = tonumber(ARGV[6]), tonumber(ARGV[7])
local in_a_row, lifetime, trial_calls = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local found = redis.call('HMGET', key, 'state', 'consecutive', 'trial_successes')
local state = found[1] or 'closed'
local function open(before, reason)
  redis.call('HSET', key, 'state', 'open', 'changed_at', ARGV[1], 'trials', 0,
             'trial_successes', 0, 'consecutive', 0)
  redis.call('DEL', window)
  redis.call('EXPIRE', key, lifetime)
  return {before, 'open', reason}
end
if state == 'half_open' then
  if not trial then return {} end
  if not ok then return open('half_open', 'a trial call failed') end
  local successes = (tonumber(found[3]) or 0) + 1
  if successes < trial_calls then
    redis.call('HSET', key, 'trial_successes', successes)
    return {}
  end
  redis.call('HSET', key, 'state', 'closed', 'changed_at', ARGV[1], 'consecutive', 0,
             'trials', 0, 'trial_successes', 0)
  redis.call('DEL', window)
  return {'half_open', 'closed', 'trial calls succeeded'}
end
if state == 'open' then return {} end
local bucket = math.floor(now / width)
local oldest = bucket - buckets + 1
if redis.call('HEXISTS', window, 'c' .. bucket) == 0 then
  for _, field in ipairs(redis.call('HKEYS', window)) do
    if tonumber(string.sub(field, 2)) < oldest then redis.call('HDEL', window, field) end
  end
end
redis.call('HINCRBY', window, 'c' .. bucket, 1)
redis.call('EXPIRE', window, lifetime)
if ok then
  if (tonumber(found[2]) or 0) ~= 0 then redis.call('HSET', key, 'consecutive', 0) end
  return {}
end
redis.call('HINCRBY', window, 'f' .. bucket, 1)
local consecutive = redis.call('HINCRBY', key, 'consecutive', 1)
redis.call('EXPIRE', key, lifetime)
if in_a_row > 0 and consecutive >= in_a_row then
  return open('closed', consecutive .. ' failures in a row')
end
local counts = redis.call('HGETALL', window)
local calls, failures = 0, 0
for i = 1, #counts, 2 do
  if tonumber(string.sub(counts[i], 2)) >= oldest then
    if string.sub(counts[i], 1, 1) == 'c' then
      calls = calls + tonumber(counts[i + 1])
    else
      failures = failures + tonumber(counts[i + 1])
    end
  end
end
if calls >= minimum and failures / calls >= rate then
  return open('closed', failures .. ' of ' .. calls .. ' calls failed in ' .. ARGV[11] .. ' s')
end
return {}
"""

_FORCE_OPEN = """
local found = redis.call('HMGET', KEYS[1], 'state', 'changed_at')
if found[1] == 'open' and (tonumber(found[2]) or 0) >= tonumber(ARGV[1]) then return {} end
redis.call('HSET', KEYS[1], 'state', 'open', 'changed_at', ARGV[1], 'trials', 0,
           'trial_successes', 0, 'consecutive', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {found[1] or 'closed', 'open'}
"""

_KEEP = """
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if extra > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  redis.call('DEL', unpack(oldest))
end
return extra
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _breaker_key(name: str) -> str:
    return f"{PREFIX}:{name}:breaker"


def _admission(name: str, reply: list[Any], now: float) -> Admission:
    state = CircuitState(_text(reply[0]))
    transition = None
    if _text(reply[4]):
        transition = Transition(name, CircuitState(_text(reply[4])), state, now, "cool-down over")
    return Admission(
        bool(int(reply[1])), state, bool(int(reply[2])), float(_text(reply[3])), transition
    )


def _transition(name: str, reply: list[Any], now: float) -> Transition | None:
    if not reply:
        return None
    before, after, reason = (_text(part) for part in reply)
    return Transition(name, CircuitState(before), CircuitState(after), now, reason)


def _admit_arguments(rules: BreakerPolicy, now: float) -> list[str | int]:
    return [repr(now), repr(rules.cool_down), rules.half_open_calls, KEY_LIFETIME]


def _record_arguments(rules: BreakerPolicy, now: float, ok: bool, trial: bool) -> list[str | int]:
    return [
        repr(now),
        "1" if ok else "0",
        "1" if trial else "0",
        repr(bucket_width(rules)),
        BUCKETS,
        rules.minimum_calls,
        repr(rules.failure_rate),
        rules.consecutive_failures or 0,
        KEY_LIFETIME,
        rules.half_open_calls,
        f"{rules.window:g}",
    ]


def _encode(value: object, now: float) -> bytes:
    try:
        return orjson.dumps({"stored_at": now, "value": value})
    except TypeError as error:
        raise Unstorable(f"a cached answer must be JSON to be shared: {error}") from None


def _decode(payload: bytes | str | None) -> Cached | None:
    if payload is None:
        return None
    document = orjson.loads(payload)
    return Cached(document["value"], float(document["stored_at"]))


class _LoopClients:
    """An event loop's own async clients: redis-py's and limits' are bound to one loop."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.redis = redis_asyncio.Redis.from_url(url, **options)
        self.admit = self.redis.register_script(_ADMIT)
        self.record = self.redis.register_script(_RECORD)
        self.keep = self.redis.register_script(_KEEP)
        storage = AsyncLimitsStorage(
            f"async+{url}", implementation="redispy", key_prefix=PREFIX, **options
        )
        self.limiter = AsyncLimiter(storage)


class RedisState:
    """The state of every guarded integration, in the Redis at ``url``."""

    kind = "redis"

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
        self._redis = redis.Redis.from_url(url, **self._options)
        self._admit = self._redis.register_script(_ADMIT)
        self._record = self._redis.register_script(_RECORD)
        self._force_open = self._redis.register_script(_FORCE_OPEN)
        self._keep = self._redis.register_script(_KEEP)
        self._limiter = SlidingWindowCounterRateLimiter(
            LimitsStorage(url, key_prefix=PREFIX, **self._options)
        )
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def _clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._loops.get(loop)
        if clients is None:
            clients = self._loops[loop] = _LoopClients(self._url, self._options)
        return clients

    def ping(self) -> None:
        self._redis.ping()

    # -- breakers ---------------------------------------------------------------------------

    def admit(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        return _admission(
            name, self._admit([_breaker_key(name)], _admit_arguments(rules, now)), now
        )

    async def admit_async(self, name: str, rules: BreakerPolicy, now: float) -> Admission:
        reply = await self._clients().admit([_breaker_key(name)], _admit_arguments(rules, now))
        return _admission(name, reply, now)

    def record(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        keys = [_breaker_key(name), f"{PREFIX}:{name}:window"]
        reply = self._record(keys, _record_arguments(rules, now, ok, trial))
        return _transition(name, reply, now)

    async def record_async(
        self, name: str, rules: BreakerPolicy, now: float, ok: bool, trial: bool
    ) -> Transition | None:
        keys = [_breaker_key(name), f"{PREFIX}:{name}:window"]
        reply = await self._clients().record(keys, _record_arguments(rules, now, ok, trial))
        return _transition(name, reply, now)

    def circuit(self, name: str) -> CircuitView:
        state, changed_at = self._redis.hmget(_breaker_key(name), ["state", "changed_at"])
        if state is None:
            return CLOSED_VIEW
        return CircuitView(CircuitState(_text(state)), float(_text(changed_at or b"0")))

    def force_open(self, name: str, at: float, reason: str) -> Transition | None:
        reply = self._force_open([_breaker_key(name)], [repr(at), KEY_LIFETIME])
        if not reply:
            return None
        return Transition(name, CircuitState(_text(reply[0])), CircuitState.OPEN, at, reason)

    # -- rate limits ------------------------------------------------------------------------

    def take(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        if self._limiter.hit(limit, name, cost=cost):
            return 0.0
        return max(self._limiter.get_window_stats(limit, name).reset_time - now, 0.001)

    async def take_async(self, name: str, limit: RateLimitItem, cost: int, now: float) -> float:
        limiter = self._clients().limiter
        if await limiter.hit(limit, name, cost=cost):
            return 0.0
        stats = await limiter.get_window_stats(limit, name)
        return max(stats.reset_time - now, 0.001)

    def charge(self, name: str, limit: RateLimitItem, cost: int) -> None:
        if cost > 0 and not self._limiter.hit(limit, name, cost=cost):
            remaining = self._limiter.get_window_stats(limit, name).remaining
            if remaining > 0:
                self._limiter.hit(limit, name, cost=remaining)

    async def charge_async(self, name: str, limit: RateLimitItem, cost: int) -> None:
        limiter = self._clients().limiter
        if cost > 0 and not await limiter.hit(limit, name, cost=cost):
            remaining = (await limiter.get_window_stats(limit, name)).remaining
            if remaining > 0:
                await limiter.hit(limit, name, cost=remaining)

    # -- cached answers ---------------------------------------------------------------------

    def cached(self, name: str, key: str) -> Cached | None:
        return _decode(self._redis.get(f"{PREFIX}:{name}:cache:{key}"))

    async def cached_async(self, name: str, key: str) -> Cached | None:
        return _decode(await self._clients().redis.get(f"{PREFIX}:{name}:cache:{key}"))

    def keep(self, name: str, key: str, value: object, rules: FallbackPolicy, now: float) -> None:
        self._keep(*_keep_call(name, key, value, rules, now))

    async def keep_async(
        self, name: str, key: str, value: object, rules: FallbackPolicy, now: float
    ) -> None:
        await self._clients().keep(*_keep_call(name, key, value, rules, now))

    def close(self) -> None:
        self._redis.close()
        # The async clients close with their loops; closing them here would need those loops.
        self._loops.clear()


def _keep_call(
    name: str, key: str, value: object, rules: FallbackPolicy, now: float
) -> tuple[list[str], list[bytes | str | int]]:
    payload = _encode(value, now)
    lifetime = max(1, math.ceil(rules.stale_if_error))
    keys = [f"{PREFIX}:{name}:cache", f"{PREFIX}:{name}:cache:{key}"]
    return keys, [payload, repr(now), lifetime, rules.max_entries]
