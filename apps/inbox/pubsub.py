"""Live inbox updates over Redis pub/sub: workers and API publish, the SSE stream subscribes.

One channel per recipient (``NOTIFIER_INBOX_PUBSUB_PREFIX`` + recipient pk).
Pub/sub is best effort: a stream that misses a message still finds the item
in the inbox list, which is the source of truth.
"""
from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from notifier.interrupts import INTERRUPTS

logger = logging.getLogger(__name__)

_client = None


def channel_name(recipient_id: int) -> str:
    return f"{settings.NOTIFIER_INBOX_PUBSUB_PREFIX}{recipient_id}"


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def publish(messages: dict[int, dict]) -> None:
    """Publish one JSON message per recipient, all in one round trip."""
    if not messages:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for recipient_id, payload in messages.items():
            pipe.publish(channel_name(recipient_id), json.dumps(payload, cls=DjangoJSONEncoder))
        pipe.execute()
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001 - live updates are best effort; the inbox itself is in PostgreSQL
        logger.exception("could not publish inbox updates for %d recipients", len(messages))
