"""Circuit breakers per provider, with their state in Redis shared by every worker.

A breaker counts consecutive transient failures of one provider. After
``threshold`` of them it opens for ``cooldown`` seconds: work for that
provider is not attempted and waits (the caller stores the time the breaker
half-opens as the notification's next attempt time, so no retry is burnt).
When the cool-down is over the breaker is half-open: one worker wins a probe
lock and sends a single message; success closes the breaker, a transient
failure opens it again for another cool-down.

A permanent error (an invalid address) proves the provider is up, so it
counts as a success here. An error in the message itself
(``ProviderError.bad_input``) is never recorded: the failover leaves it out.
When Redis cannot be reached the breaker lets
everything through (fail open) and logs it: delivery never stops because the
breaker's store is down.

``states()`` lists every configured provider's breaker for ``/metrics`` and
the admin.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from notifier.interrupts import INTERRUPTS

logger = logging.getLogger(__name__)

PREFIX = "notifier:circuit:"

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# KEYS[1] breaker hash. ARGV: now, threshold, cooldown, had_success (0/1),
# failures after the last success (or all failures if none), last error text.
# Returns the state after recording: "open" or "closed".
_RECORD = """
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local cooldown = tonumber(ARGV[3])
local had_success = ARGV[4] == '1'
local failures_n = tonumber(ARGV[5])
local failures
if had_success then
  failures = failures_n
  redis.call('HSET', KEYS[1], 'failures', failures)
else
  failures = redis.call('HINCRBY', KEYS[1], 'failures', failures_n)
end
if failures_n > 0 then
  redis.call('HSET', KEYS[1], 'last_error', ARGV[6], 'last_failure_at', now)
end
local opened_until = tonumber(redis.call('HGET', KEYS[1], 'opened_until') or '0')
if failures >= threshold and failures_n > 0 then
  if opened_until <= now then
    redis.call('HSET', KEYS[1], 'opened_until', now + cooldown, 'opened_at', now)
    redis.call('HINCRBY', KEYS[1], 'times_opened', 1)
  end
  redis.call('DEL', KEYS[1] .. ':probe')
  return 'open'
end
if had_success and opened_until > 0 then
  redis.call('HDEL', KEYS[1], 'opened_until', 'opened_at')
  redis.call('DEL', KEYS[1] .. ':probe')
end
return 'closed'
"""


@dataclass(frozen=True)
class Permit:
    """May a provider be called now, and with how many messages?

    ``allowed`` False: the breaker is open (or another worker is probing);
    ``retry_at`` (epoch seconds) is when to come back. ``probe`` True: the
    breaker is half-open and this caller holds the probe, so it sends one
    message first.
    """

    allowed: bool
    retry_at: float | None = None
    probe: bool = False


class CircuitBreaker:
    def __init__(self, redis_client, *, threshold: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.time):
        self.redis = redis_client
        self.threshold = max(1, int(threshold))
        self.cooldown = float(cooldown)
        self.clock = clock
        self._record = redis_client.register_script(_RECORD) if redis_client is not None else None

    @staticmethod
    def key(channel: str, provider: str) -> str:
        return f"{PREFIX}{channel}:{provider}"

    def permit(self, channel: str, provider: str) -> Permit:
        if self.redis is None:
            return Permit(True)
        key = self.key(channel, provider)
        try:
            opened_until = self.redis.hget(key, "opened_until")
            if opened_until is None:
                return Permit(True)
            now = self.clock()
            opened_until = float(opened_until)
            if now < opened_until:
                return Permit(False, retry_at=opened_until)
            # Half-open: one caller probes; the others come back shortly.
            probe_ttl_ms = int(max(self.cooldown, 5.0) * 1000)
            if self.redis.set(f"{key}:probe", "1", nx=True, px=probe_ttl_ms):
                return Permit(True, probe=True)
            return Permit(False, retry_at=now + min(self.cooldown, 5.0))
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - fail open: the breaker store must never stop delivery
            logger.warning("circuit breaker store unreachable; letting %s/%s through", channel, provider,
                           exc_info=True)
            return Permit(True)

    def record(self, channel: str, provider: str, outcomes: Iterable[bool | None], last_error: str = "") -> str:
        """Record call results in order: True success, False transient failure, None permanent error.

        Returns the breaker's state afterwards ("open" or "closed").
        """
        if self._record is None:
            return CLOSED
        had_success = False
        failures = 0
        for ok in outcomes:
            if ok is False:
                failures += 1
            else:  # a success or a permanent error: the provider answered
                had_success = True
                failures = 0
        if not had_success and failures == 0:
            return CLOSED
        try:
            state = self._record(keys=[self.key(channel, provider)],
                                 args=[repr(self.clock()), self.threshold, self.cooldown,
                                       "1" if had_success else "0", failures, last_error[:500]])
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001
            logger.warning("circuit breaker store unreachable; not recording %s/%s", channel, provider,
                           exc_info=True)
            return CLOSED
        state = state.decode() if isinstance(state, bytes) else state
        if state == OPEN:
            logger.warning("circuit for %s/%s is open for %.0fs: %s", channel, provider, self.cooldown, last_error)
        return state

    def release_probe(self, channel: str, provider: str) -> None:
        if self.redis is None:
            return
        try:
            self.redis.delete(f"{self.key(channel, provider)}:probe")
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001
            pass

    def reset(self, channel: str, provider: str) -> None:
        """Close a breaker by hand (admin)."""
        key = self.key(channel, provider)
        self.redis.delete(key, f"{key}:probe")

    def state(self, channel: str, provider: str) -> dict:
        key = self.key(channel, provider)
        raw = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
               for k, v in (self.redis.hgetall(key) or {}).items()}
        now = self.clock()
        opened_until = float(raw["opened_until"]) if raw.get("opened_until") else None
        if opened_until is None:
            state = CLOSED
        elif now < opened_until:
            state = OPEN
        else:
            state = HALF_OPEN
        return {
            "channel": channel,
            "provider": provider,
            "state": state,
            "value": STATE_VALUES[state],
            "failures": int(raw.get("failures") or 0),
            "threshold": self.threshold,
            "opened_until": opened_until,
            "times_opened": int(raw.get("times_opened") or 0),
            "last_error": raw.get("last_error", ""),
            "last_failure_at": float(raw["last_failure_at"]) if raw.get("last_failure_at") else None,
        }


_breaker: CircuitBreaker | None = None


def breaker() -> CircuitBreaker:
    """The process-wide breaker, built from Django settings on first use."""
    global _breaker
    if _breaker is None:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _breaker = CircuitBreaker(client, threshold=settings.NOTIFIER_CIRCUIT_THRESHOLD,
                                  cooldown=settings.NOTIFIER_CIRCUIT_COOLDOWN)
    return _breaker


def reset_breaker() -> None:
    """Forget the process-wide breaker (tests that change settings)."""
    global _breaker
    _breaker = None


def states(providers: dict[str, list[str]] | None = None) -> list[dict]:
    """State of the breaker of every configured provider, for ``/metrics`` and the admin.

    Each item: ``{"channel", "provider", "state" ("closed" | "half_open" |
    "open"), "value" (0 | 1 | 2), "failures", "threshold", "opened_until"
    (epoch seconds or None), "times_opened", "last_error", "last_failure_at"}``.
    """
    if providers is None:
        from django.conf import settings

        providers = settings.NOTIFIER_PROVIDERS
    b = breaker()
    result = []
    for channel, names in providers.items():
        for name in names:
            if name in ("null", "inbox", "console"):  # they never fail
                continue
            try:
                result.append(b.state(channel, name))
            except Exception:  # noqa: BLE001
                logger.warning("circuit breaker store unreachable", exc_info=True)
                return result
    return result
