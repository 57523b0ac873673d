"""Reads: endpoints for the provider and for event fan-out."""
from __future__ import annotations

import time

from notifier.channels.webhook import Endpoint

from .models import WebhookEndpoint

_SUBSCRIPTIONS_TTL = 5.0
# event type -> project id -> [(endpoint id, channels or None for every channel)]
Subscriptions = dict[str, dict[int, list[tuple[str, frozenset | None]]]]
_subscriptions: tuple[float, Subscriptions] | None = None


def endpoints_for_delivery(endpoint_ids: list[str]) -> dict[str, Endpoint]:
    """URL, secret and state of the given endpoints (one query; the webhook provider's resolver)."""
    from apps.notifications.selectors import parse_uuid

    pks = [pk for pk in (parse_uuid(i) for i in endpoint_ids) if pk is not None]
    rows = WebhookEndpoint.objects.filter(pk__in=pks).values_list("id", "url", "secret", "active", "disabled_reason")
    return {str(pk): Endpoint(url=url, secret=secret, active=active, disabled_reason=reason)
            for pk, url, secret, active, reason in rows}


def subscriptions(*, now=time.monotonic) -> Subscriptions:
    """Event type -> project -> the active endpoints of that project subscribed to it, each with the
    channels it hears of (None: all); cached for a few seconds per process, so delivering a chunk costs
    no query when nobody listens."""
    global _subscriptions
    if _subscriptions is None or _subscriptions[0] < now():
        table: Subscriptions = {}
        rows = WebhookEndpoint.objects.filter(active=True).values_list("id", "project_id", "events", "channels")
        for pk, project_id, events, channels in rows:
            for event in events or []:
                table.setdefault(event, {}).setdefault(project_id, []).append(
                    (str(pk), frozenset(channels) if channels else None))
        _subscriptions = (now() + _SUBSCRIPTIONS_TTL, table)
    return _subscriptions[1]


def subscribed_endpoints(table: Subscriptions, event: str, *, project_id: int, channel: str) -> list[str]:
    """Ids of the endpoints that hear of ``event`` for a notification of ``project_id`` on ``channel``."""
    endpoints = table.get(event, {}).get(project_id)
    if not endpoints:
        return []
    return [pk for pk, channels in endpoints if channels is None or channel in channels]


def endpoints_owned(*, project_id: int, channels=None):
    """The endpoints a key of ``project_id`` may see and change: its project's, and when the key is
    restricted to ``channels``, only those that hear of no other channel."""
    qs = WebhookEndpoint.objects.filter(project_id=project_id)
    if channels:
        qs = qs.filter(channels__contained_by=list(channels)).exclude(channels=[])
    return qs


def endpoint_owned(endpoint_id: str, *, project_id: int, channels=None) -> WebhookEndpoint | None:
    from apps.notifications.selectors import parse_uuid

    pk = parse_uuid(endpoint_id)
    return endpoints_owned(project_id=project_id, channels=channels).filter(pk=pk).first() if pk else None


def clear_cache() -> None:
    global _subscriptions
    _subscriptions = None
