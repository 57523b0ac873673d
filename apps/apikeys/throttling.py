"""Per API key throttling shared by all API processes (a token bucket in Redis)."""
from __future__ import annotations

import logging

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from .models import ApiKey
from .services import clear_cache, rate_limiter

logger = logging.getLogger(__name__)


class ApiKeyRateThrottle(BaseThrottle):
    """NOTIFIER_API_RATE requests/s with a NOTIFIER_API_BURST burst per key (per-key overrides in the admin).

    One Redis round trip per request: the same script reads the key's revocation
    marker, so a key revoked a moment ago answers 401 here. Over the limit: 429 with
    ``Retry-After``. If Redis is unreachable the request is let through (and logged):
    throttling protects the service, it must not take it down.
    """

    def __init__(self):
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        rate, burst = key.throttle_limits(default_rate=settings.NOTIFIER_API_RATE,
                                          default_burst=settings.NOTIFIER_API_BURST)
        try:
            decision = rate_limiter().hit(str(key.pk), rate=rate, burst=burst)
        except Exception:  # noqa: BLE001 - fail open, see the docstring
            logger.warning("API throttle unavailable (Redis); request let through", exc_info=True)
            return True
        if decision.revoked:
            clear_cache()
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if decision.allowed:
            return True
        self._wait = decision.retry_after
        return False

    def wait(self) -> float | None:
        return self._wait


def throttle_many(keys: list[ApiKey]) -> list[bool]:
    """Whether ``ApiKeyRateThrottle`` lets one request of each key in ``keys`` through, for many
    requests in one Redis round trip (the group committer's single creates, see
    ``apps/notifications/groupcommit.py``). Each allowed request takes its token, as a request through
    the throttle does; a throttled or revoked one takes none (its caller then answers it the way
    the throttle does). Redis unreachable: every request is let through, as there."""
    limits = [(str(key.pk), *key.throttle_limits(default_rate=settings.NOTIFIER_API_RATE,
                                                  default_burst=settings.NOTIFIER_API_BURST)) for key in keys]
    try:
        decisions = rate_limiter().hit_many(limits)
    except Exception:  # noqa: BLE001 - fail open, see ApiKeyRateThrottle
        logger.warning("API throttle unavailable (Redis); %d requests let through", len(keys), exc_info=True)
        return [True] * len(keys)
    if any(d.revoked for d in decisions):
        clear_cache()
    return [d.allowed for d in decisions]
