"""Reads: endpoints for the provider and for event fan-out."""
from __future__ import annotations

import time

from notifier.channels.webhook import Endpoint

from .models import WebhookEndpoint

_SUBSCRIPTIONS_TTL = 5.0
_subscriptions: tuple[float, dict[str, list[str]]] | None = None


def endpoints_for_delivery(endpoint_ids: list[str]) -> dict[str, Endpoint]:
    """URL, secret and state of the given endpoints (one query; the webhook provider's resolver)."""
    from apps.notifications.selectors import parse_uuid

    pks = [pk for pk in (parse_uuid(i) for i in endpoint_ids) if pk is not None]
    rows = WebhookEndpoint.objects.filter(pk__in=pks).values_list("id", "url", "secret", "active", "disabled_reason")
    return {str(pk): Endpoint(url=url, secret=secret, active=active, disabled_reason=reason)
            for pk, url, secret, active, reason in rows}


def subscriptions(*, now=time.monotonic) -> dict[str, list[str]]:
    """Event type -> ids of active endpoints subscribed to it; cached for a few seconds per process,
    so delivering a chunk costs no query when nobody listens."""
    global _subscriptions
    if _subscriptions is None or _subscriptions[0] < now():
        table: dict[str, list[str]] = {}
        for pk, events in WebhookEndpoint.objects.filter(active=True).values_list("id", "events"):
            for event in events or []:
                table.setdefault(event, []).append(str(pk))
        _subscriptions = (now() + _SUBSCRIPTIONS_TTL, table)
    return _subscriptions[1]


def clear_cache() -> None:
    global _subscriptions
    _subscriptions = None
