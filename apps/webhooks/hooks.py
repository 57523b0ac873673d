"""Delivery result hook: notification events become webhook deliveries; webhook results update endpoint health.

``prepare`` runs as the results are recorded: it keeps, for the outbox row, the results some endpoint
listens to (the notification id, its event and the values the result set) and the webhook deliveries'
outcomes per endpoint; with no endpoint subscribed and no webhook result there is no row. ``run`` does
the work after the results' commit (``apps/notifications/resulthooks.py``).
"""
from __future__ import annotations

from datetime import datetime

from apps.notifications.models import Channel, Notification, Status
from apps.notifications.selectors import notifications_load_deferred

from . import selectors
from .services import api_time, endpoint_health_record, event_payload, failures_by_endpoint, webhook_deliveries_create

# Result statuses that are events clients can subscribe to (a retry, status `queued`, is not).
EVENT_OF_STATUS = {
    Status.SENT: "notification.sent",
    Status.FAILED: "notification.failed",
    Status.EXPIRED: "notification.expired",
    Status.SUPPRESSED: "notification.suppressed",
}
STATUS_OF_EVENT = {event: status for status, event in EVENT_OF_STATUS.items()}
# What an event's payload takes from the result rather than from the notification row as it is when
# the hook runs (a retry or a delivery receipt may have changed it since).
_RESULT_FIELDS = ("attempts", "provider", "provider_message_id", "last_error")
# What an event's payload reads from the notification row.
_PAYLOAD_FIELDS = ("id", "channel", "status", "category", "priority", "recipient", "project_id", "attempts",
                   "provider", "provider_message_id", "last_error", "created_at", "sent_at", "delivered_at",
                   "metadata", "recipient__external_id")


def prepare(results, now: datetime) -> dict | None:
    data: dict = {}
    webhook_results = [r for r in results if r.notification.channel == Channel.WEBHOOK]
    if webhook_results:
        successes, failures = failures_by_endpoint(webhook_results)
        if successes or failures:
            data["health"] = {"successes": successes, "failures": failures}
    table = selectors.subscriptions()
    subscribed = []
    if table:
        for r in results:
            if r.notification.channel == Channel.WEBHOOK:
                continue  # never webhooks about webhooks
            event = EVENT_OF_STATUS.get(r.status)
            if event is not None and event in table:
                subscribed.append((r, event))
    if subscribed:
        # A worker's claim leaves the owner deferred: load it for these rows in one query.
        notifications_load_deferred([r.notification for r, _ in subscribed], ("project_id",))
        events: dict[str, list] = {"id": [], "event": [], **{f: [] for f in _RESULT_FIELDS}}
        for r, event in subscribed:
            n = r.notification
            # Only the endpoints of the notification's own project, that hear of its channel.
            if not selectors.subscribed_endpoints(table, event, project_id=n.project_id, channel=n.channel):
                continue
            events["id"].append(n.id.hex)
            events["event"].append(event)
            events["attempts"].append(n.attempts + (1 if r.attempted else 0))
            events["provider"].append(r.provider or n.provider)
            events["provider_message_id"].append(r.provider_message_id or n.provider_message_id)
            events["last_error"].append(r.error if r.status != Status.SENT else n.last_error)
        if events["id"]:
            data["events"] = events
    if not data:
        return None
    data["at"] = now.isoformat()
    return data


def run(data: dict) -> None:
    at = datetime.fromisoformat(data["at"])
    health = data.get("health")
    if health:
        endpoint_health_record(successes=health["successes"],
                               failures={k: tuple(v) for k, v in health["failures"].items()}, now=at)
    events = data.get("events")
    if events:
        _fan_out(events, at)


def _fan_out(events: dict, at: datetime) -> None:
    """One webhook delivery per (event, endpoint of its notification's project that listens to it)."""
    table = selectors.subscriptions()
    rows = {n.id.hex: n for n in Notification.objects.filter(pk__in=events["id"]).select_related("recipient")
            .only(*_PAYLOAD_FIELDS)}
    deliveries = []
    for i, (notification_id, event) in enumerate(zip(events["id"], events["event"])):
        n = rows.get(notification_id)
        if n is None:
            continue  # deleted since
        endpoint_ids = selectors.subscribed_endpoints(table, event, project_id=n.project_id, channel=n.channel)
        if not endpoint_ids:
            continue  # unsubscribed since
        status = STATUS_OF_EVENT[event]
        payload = event_payload(
            event, n, at=at, status=status, **{f: events[f][i] for f in _RESULT_FIELDS},
            sent_at=api_time(at) if status == Status.SENT else None,
        )
        deliveries.extend((endpoint_id, payload, event, n.project_id) for endpoint_id in endpoint_ids)
    if deliveries:
        webhook_deliveries_create(deliveries)
