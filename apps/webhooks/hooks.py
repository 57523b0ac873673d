"""Delivery result hook: notification events become webhook deliveries; webhook results update endpoint health."""
from __future__ import annotations

from apps.notifications.models import Channel, Status
from apps.notifications.selectors import notifications_load_deferred

from . import selectors
from .services import _iso, endpoint_health_record, event_payload, failures_by_endpoint, webhook_deliveries_create

# Result statuses that are events clients can subscribe to (a retry, status `queued`, is not).
EVENT_OF_STATUS = {
    Status.SENT: "notification.sent",
    Status.FAILED: "notification.failed",
    Status.EXPIRED: "notification.expired",
    Status.SUPPRESSED: "notification.suppressed",
}


def on_results(results, now) -> None:
    webhook_results = [r for r in results if r.notification.channel == Channel.WEBHOOK]
    if webhook_results:
        successes, failures = failures_by_endpoint(webhook_results)
        endpoint_health_record(successes=successes, failures=failures, now=now)
    table = selectors.subscriptions()
    if not table:
        return
    subscribed = []
    for r in results:
        if r.notification.channel == Channel.WEBHOOK:
            continue  # never webhooks about webhooks
        event = EVENT_OF_STATUS.get(r.status)
        if event is not None and event in table:
            subscribed.append((r, event))
    # A worker's claim leaves metadata and the owner deferred: load them for these rows in one query.
    notifications_load_deferred([r.notification for r, _ in subscribed], ("metadata", "project_id"))
    deliveries = []
    for r, event in subscribed:
        n = r.notification
        # Only the endpoints of the notification's own project, that hear of its channel.
        endpoint_ids = selectors.subscribed_endpoints(table, event, project_id=n.project_id, channel=n.channel)
        if not endpoint_ids:
            continue
        payload = event_payload(
            event, n, at=now, status=r.status, attempts=n.attempts + (1 if r.attempted else 0),
            provider=r.provider or n.provider, provider_message_id=r.provider_message_id or n.provider_message_id,
            last_error=r.error if r.status != Status.SENT else n.last_error,
            sent_at=_iso(now) if r.status == Status.SENT else None,
        )
        deliveries.extend((endpoint_id, payload, event, n.project_id) for endpoint_id in endpoint_ids)
    if deliveries:
        webhook_deliveries_create(deliveries, now=now)
