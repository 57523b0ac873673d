"""Token buckets in Redis, shared by every process that talks to the same Redis.

Two uses, one Lua script each (so every decision is atomic and costs one
round trip):

* ``ApiRateLimiter.hit`` — per API key requests per second with a burst. The
  same call also reads the key's revocation marker (``mark_revoked``), so a
  revoked key is refused by every worker at once without an extra round trip.
* ``CapLimiter.hit_many`` — per-recipient frequency caps: a whole batch of
  (bucket, capacity, period) items in one script call, processed in order.
  ``suppress`` items are refused when the bucket is empty; ``hold`` items take
  the next free slot (the bucket goes into debt) and learn how long to wait.

Time: by default the scripts read Redis ``TIME`` (one clock for all hosts);
tests inject ``clock`` (a callable returning seconds) and then the given time
is used instead.

Buckets are Redis hashes ``{tokens, ts}`` that expire once they would be full
again, so idle keys cost no memory.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import redis

# --- scripts ---------------------------------------------------------------------------

# KEYS[1] bucket hash, KEYS[2] revocation marker
# ARGV: now (seconds, or "" to use Redis TIME), rate (tokens/s, <= 0 = unlimited), burst, cost,
# and optionally count: that many requests of ``cost`` each, in order (default 1)
# -> {code, retry_after_ms, remaining}; code 1 allowed, 0 throttled, -1 revoked. With a count, code is
# how many of them were allowed (the first ones: the bucket only empties), retry_after_ms is that of
# the first one refused, remaining is what the bucket holds after them all: the same decisions and
# the same bucket as ``count`` calls one after another at the same ``now``.
_API_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, 0, 0}
end
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local count = tonumber(ARGV[5] or '1')
if rate <= 0 then
  return {count, 0, burst}
end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local code = 0
local wait = 0
for i = 1, count do
  if tokens >= cost then
    tokens = tokens - cost
    code = code + 1
  else
    wait = (cost - tokens) / rate
    break
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1) * 1000))
return {code, math.ceil(wait * 1000), math.floor(tokens)}
"""

# KEYS[i] bucket per item (repeats allowed); ARGV[1] now ("" = Redis TIME), then per item
# capacity, period_seconds, mode ("suppress" | "hold"), max_hold_seconds
# -> flat list of {code, wait_ms} per item; code 1 allowed, 0 refused, 2 held for wait_ms
_CAP_SCRIPT = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local out = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local capacity = tonumber(ARGV[base + 1])
  local period = tonumber(ARGV[base + 2])
  local mode = ARGV[base + 3]
  local max_hold = tonumber(ARGV[base + 4])
  local rate = capacity / period
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  if now > ts then
    tokens = math.min(capacity, tokens + (now - ts) * rate)
    ts = now
  end
  local code = 0
  local wait = 0
  if tokens >= 1 then
    tokens = tokens - 1
    code = 1
  else
    wait = (1 - tokens) / rate
    if mode == 'hold' and wait <= max_hold then
      tokens = tokens - 1
      code = 2
    end
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts))
  redis.call('PEXPIRE', key, math.ceil(((capacity - tokens) / rate + 1) * 1000))
  out[#out + 1] = code
  out[#out + 1] = math.ceil(wait * 1000)
end
return out
"""


@lru_cache(maxsize=8)
def client_from_url(url: str) -> redis.Redis:
    """One client (and connection pool) per URL per process; redis-py pools are fork-safe."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)


def hashed(value: str) -> str:
    """A bucket name part that does not put personal data (addresses, ids) in Redis keys."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _now_arg(clock: Callable[[], float] | None) -> str:
    return "" if clock is None else repr(float(clock()))


# --- API keys ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiDecision:
    allowed: bool
    revoked: bool = False
    retry_after: float = 0.0  # seconds until one request would be allowed
    remaining: int = 0


class ApiRateLimiter:
    """Requests per second with a burst, per API key, plus the key's revocation marker."""

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] | None = None,
                 namespace: str = "notifier"):
        self.client = client
        self.clock = clock
        self.namespace = namespace
        self._script = client.register_script(_API_SCRIPT)

    def _keys(self, key_id: str) -> list[str]:
        # One hash tag per key keeps both names in one cluster slot.
        tag = "{apikey:%s}" % key_id
        return [f"{self.namespace}:rl:{tag}", f"{self.namespace}:revoked:{tag}"]

    def hit(self, key_id: str, *, rate: float, burst: int, cost: int = 1) -> ApiDecision:
        code, wait_ms, remaining = self._script(
            keys=self._keys(key_id), args=[_now_arg(self.clock), repr(float(rate)), int(burst), int(cost)],
        )
        return self._decision(code, wait_ms, remaining)

    @staticmethod
    def _decision(code, wait_ms, remaining) -> ApiDecision:
        code = int(code)
        if code == -1:
            return ApiDecision(allowed=False, revoked=True)
        return ApiDecision(allowed=code == 1, retry_after=int(wait_ms) / 1000.0, remaining=int(remaining))

    def hit_many(self, items: Sequence[tuple[str, float, int]]) -> list[ApiDecision]:
        """``hit(key_id, rate=rate, burst=burst)`` for each ``(key_id, rate, burst)`` in order, in one
        round trip: one script call per distinct key (with the count of its requests: a group commit's
        requests mostly share one key), each atomic on its own. The decisions are those of one call
        per item in order (the script takes the requests of a key in order, the bucket only empties)."""
        now = _now_arg(self.clock)
        counts: dict[tuple[str, float, int], int] = {}
        for item in items:
            counts[item] = counts.get(item, 0) + 1
        calls = [(self._keys(key_id), (now, repr(float(rate)), int(burst), 1, count))
                 for (key_id, rate, burst), count in counts.items()]
        if len(calls) == 1:  # one key (the common group): one command, without a pipeline's machinery
            keys, args = calls[0]
            try:
                replies = [self.client.evalsha(self._script.sha, len(keys), *keys, *args)]
            except redis.exceptions.NoScriptError:  # Redis ran nothing: load the script, then once more
                self.client.script_load(self._script.script)
                replies = [self.client.evalsha(self._script.sha, len(keys), *keys, *args)]
        else:
            replies = self._evalsha_many(calls)
        # Each item's decision: the n-th request of a key is allowed if n < allowed.
        outcomes = {}
        for item, (code, wait_ms, remaining) in zip(counts, replies):
            outcomes[item] = [int(code), int(wait_ms), int(remaining), 0]  # allowed, wait, left after all, seen
        decisions = []
        for item in items:
            outcome = outcomes[item]
            allowed, wait_ms, left, seen = outcome
            outcome[3] = seen + 1
            if allowed == -1:
                decisions.append(ApiDecision(allowed=False, revoked=True))
            elif seen < allowed:  # what was left after this one: the later allowed ones' tokens too
                unlimited = float(item[1]) <= 0  # the bucket is not touched: it reports the burst
                decisions.append(ApiDecision(allowed=True, remaining=left if unlimited else left + allowed - seen - 1))
            else:
                decisions.append(ApiDecision(allowed=False, retry_after=wait_ms / 1000.0, remaining=left))
        return decisions

    def _evalsha_many(self, calls: list) -> list:
        """The replies of the script calls ``(keys, args)``, in one round trip."""
        replies: list = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            # EVALSHA straight away: redis-py's pipeline would first ask SCRIPT EXISTS, a round trip more
            # for every call. Redis answers NOSCRIPT (and runs nothing) only after a restart or a
            # SCRIPT FLUSH; then the script is loaded once and just the refused calls are sent again.
            pipe = self.client.pipeline(transaction=False)
            for i in todo:
                keys, args = calls[i]
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            missing = []
            for i, reply in zip(todo, pipe.execute(raise_on_error=False)):
                if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 0:
                    missing.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    replies[i] = reply
            if not missing:
                break
            self.client.script_load(self._script.script)
            todo = missing
        return replies

    def mark_revoked(self, key_id: str) -> None:
        self.client.set(self._keys(key_id)[1], "1")

    def clear_revoked(self, key_id: str) -> None:
        self.client.delete(self._keys(key_id)[1])


# --- frequency caps -------------------------------------------------------------------------

ALLOWED, REFUSED, HELD = 1, 0, 2


@dataclass(frozen=True)
class CapItem:
    bucket: str  # e.g. "marketing:<hashed recipient>"
    capacity: int  # at most this many ...
    period: float  # ... per this many seconds
    mode: str = "suppress"  # or "hold"
    max_hold: float = 7 * 86400  # a hold longer than this suppresses instead


@dataclass(frozen=True)
class CapDecision:
    code: int  # ALLOWED, REFUSED or HELD
    wait: float = 0.0  # seconds: until a slot frees (REFUSED) or until this item's slot (HELD)


class CapLimiter:
    """Per-recipient frequency caps as token buckets; a batch is one script call."""

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] | None = None,
                 namespace: str = "notifier"):
        self.client = client
        self.clock = clock
        self.namespace = namespace
        self._script = client.register_script(_CAP_SCRIPT)

    def hit_many(self, items: Sequence[CapItem]) -> list[CapDecision]:
        if not items:
            return []
        keys = [f"{self.namespace}:cap:{item.bucket}" for item in items]
        args: list = [_now_arg(self.clock)]
        for item in items:
            if item.capacity < 1 or item.period <= 0:
                raise ValueError(f"cap needs capacity >= 1 and period > 0, got {item!r}")
            args += [int(item.capacity), repr(float(item.period)), item.mode, repr(float(item.max_hold))]
        flat = self._script(keys=keys, args=args)
        return [CapDecision(code=int(flat[i]), wait=int(flat[i + 1]) / 1000.0) for i in range(0, len(flat), 2)]
