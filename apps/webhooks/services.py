"""Writes: registering endpoints, fanning notification events out as webhook deliveries, endpoint health.

Every event for every subscribed endpoint is a ``Notification`` of channel
``webhook`` (``to`` = endpoint id, ``content.body`` = the exact JSON body), so
it is queued, retried with back-off, dead-lettered and recorded in the events
history exactly like any other notification.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.fields import DateTimeField

from apps.notifications import lifecycle, outbox
from apps.notifications.models import Channel, Notification, Status
from notifier.channels.webhook import secret_generate

from . import selectors
from .models import WebhookEndpoint

_datetime = DateTimeField()


def api_time(value):
    """A time as the API writes it (DRF's ISO 8601), or None."""
    return _datetime.to_representation(value) if value else None


class EndpointLimitReached(Exception):
    """The project already has ``NOTIFIER_WEBHOOK_MAX_ENDPOINTS`` endpoints."""

    def __init__(self, limit: int):
        super().__init__(f"This project already has the most webhook endpoints allowed ({limit}); "
                         f"delete one before registering another.")
        self.limit = limit


def webhook_endpoint_create(*, url: str, events: list[str], description: str = "", api_key=None) -> WebhookEndpoint:
    """A new endpoint of ``api_key``'s project (no key: the default project), hearing of the channels the key
    may use; its ``secret`` attribute is returned once to the caller.

    A project has at most ``NOTIFIER_WEBHOOK_MAX_ENDPOINTS`` endpoints (active or not), so one event fans out
    to at most that many deliveries: one more raises ``EndpointLimitReached``. The project's row is locked
    while counting, so concurrent registrations cannot pass the limit together."""
    from apps.apikeys.models import Project, default_project_id

    project_id = api_key.project_id if api_key is not None else default_project_id()
    channels = sorted(api_key.allowed_channels or []) if api_key is not None else []
    limit = settings.NOTIFIER_WEBHOOK_MAX_ENDPOINTS
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project_id).values_list("pk").first()
        if WebhookEndpoint.objects.filter(project_id=project_id).count() >= limit:
            raise EndpointLimitReached(limit)
        endpoint = WebhookEndpoint.objects.create(
            url=url, events=sorted(set(events)), description=description, secret=secret_generate(),
            api_key=api_key, project_id=project_id, channels=channels,
        )
    selectors.clear_cache()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()
    selectors.clear_cache()


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=True, disabled_at=None, disabled_reason="", consecutive_failures=0)
    selectors.clear_cache()
    endpoint.refresh_from_db()
    return endpoint


def event_payload(event: str, notification: Notification, *, at, **overrides: Any) -> dict:
    """The JSON body of one event (Standard Webhooks shape: type, timestamp, data)."""
    data = {
        "id": str(notification.id),
        "channel": notification.channel,
        "status": notification.status,
        "category": notification.category,
        "priority": notification.priority,
        "recipient": getattr(notification.recipient, "external_id", None) if notification.recipient_id else None,
        "attempts": notification.attempts,
        "provider": notification.provider,
        "provider_message_id": notification.provider_message_id,
        "last_error": notification.last_error,
        "created_at": api_time(notification.created_at),
        "sent_at": api_time(notification.sent_at),
        "delivered_at": api_time(notification.delivered_at),
        "metadata": notification.metadata or {},
    }
    data.update(overrides)
    return {"type": event, "timestamp": api_time(at), "data": data}


def webhook_deliveries_create(events: Iterable[tuple[str, dict, str, int]], *, now=None) -> list[Notification]:
    """Insert one ``webhook`` notification per (endpoint id, payload, event, project id) and publish after
    commit. A delivery belongs to its endpoint's project (the project of the notification it tells of).

    Runs inside the caller's transaction. Webhook deliveries skip acceptance
    policy (preferences and quiet hours are about people, not endpoints).
    """
    now = now or timezone.now()
    rows, details = [], []
    for endpoint_id, payload, event, project_id in events:
        row = Notification(
            channel=Channel.WEBHOOK, to=endpoint_id, category="transactional", project_id=project_id,
            priority=settings.NOTIFIER_WEBHOOK_PRIORITY,
            content={"body": json.dumps(payload, separators=(",", ":"), sort_keys=True),
                     "data": {"event": event, "notification_id": payload["data"]["id"]}},
            metadata={"event": event, "notification_id": payload["data"]["id"]},
            created_at=now, updated_at=now,
        )
        rows.append(row)
        details.append(event)
    if not rows:
        return []
    with transaction.atomic():
        lifecycle.admit(rows, details, now=now)
        outbox.publish_on_commit([(n.id, n.priority) for n in rows])
    return rows


def webhook_events_emit(*, event: str, notification_ids: list, now=None) -> int:
    """Emit ``event`` for notifications (by id) to the endpoints subscribed to it. Returns deliveries made.

    For status changes made outside the worker (an inbox read, a provider's
    delivery receipt). Call it inside the transaction that changes the status.
    """
    table = selectors.subscriptions()
    if event not in table or not notification_ids:
        return 0
    now = now or timezone.now()
    notifications = (Notification.objects.filter(id__in=list(notification_ids))
                     .exclude(channel=Channel.WEBHOOK).select_related("recipient"))
    deliveries = [
        (endpoint_id, event_payload(event, n, at=now), event, n.project_id)
        for n in notifications
        for endpoint_id in selectors.subscribed_endpoints(table, event, project_id=n.project_id, channel=n.channel)
    ]
    return len(webhook_deliveries_create(deliveries, now=now))


def endpoint_health_record(*, successes: dict[str, int], failures: dict[str, tuple[int, str, bool]], now) -> None:
    """Successes reset an endpoint's failure streak; failures (count, last error, gone) extend it, and an
    endpoint whose streak reaches NOTIFIER_WEBHOOK_DISABLE_AFTER, or that answered 410 Gone, is disabled."""
    if successes:
        WebhookEndpoint.objects.filter(pk__in=list(successes)).update(consecutive_failures=0, last_success_at=now)
    limit = settings.NOTIFIER_WEBHOOK_DISABLE_AFTER
    disabled = False
    for endpoint_id, (count, error, gone) in failures.items():
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(
            consecutive_failures=F("consecutive_failures") + count, last_error=error[:2000], last_failure_at=now)
        qs = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True)
        if gone:
            reason = f"the endpoint answered 410 Gone ({error[:300]})"
        else:
            qs = qs.filter(consecutive_failures__gte=limit)
            reason = f"{limit} deliveries in a row failed; last error: {error[:300]}"
        disabled |= bool(qs.update(active=False, disabled_at=now, disabled_reason=reason[:500]))
    if disabled:
        selectors.clear_cache()


def failures_by_endpoint(results) -> tuple[dict[str, int], dict[str, tuple[int, str, bool]]]:
    successes: dict[str, int] = defaultdict(int)
    failures: dict[str, tuple[int, str, bool]] = {}
    for r in results:
        endpoint_id = r.notification.to
        if r.status == Status.SENT:
            successes[endpoint_id] += 1
        elif r.status == Status.FAILED and r.attempted:
            count, _, gone = failures.get(endpoint_id, (0, "", False))
            failures[endpoint_id] = (count + 1, r.error, gone or "HTTP 410" in r.error)
    return successes, failures
