"""Reads."""
from __future__ import annotations

import uuid
from datetime import datetime

from .models import Notification, Status


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def owned(queryset, *, project_id: int, channels=None):
    """``queryset`` (of notifications) narrowed to what a key of ``project_id`` may see: its project's
    notifications, of ``channels`` only when given (a key's ``allowed_channels``; empty: every channel)."""
    queryset = queryset.filter(project_id=project_id)
    if channels:
        queryset = queryset.filter(channel__in=list(channels))
    return queryset


def notification_get(notification_id: str, *, project_id: int, channels=None) -> Notification | None:
    """The notification, if it belongs to ``project_id`` and (when given) is of one of ``channels``:
    another owner's notification is not found, like one that does not exist."""
    pk = parse_uuid(notification_id)
    if pk is None:
        return None
    qs = Notification.objects.select_related("recipient").prefetch_related("events").filter(pk=pk)
    return owned(qs, project_id=project_id, channels=channels).first()


def notification_list(*, project_id: int, channels=None, status: str | None = None, channel: str | None = None,
                      recipient: str | None = None, category: str | None = None):
    qs = owned(Notification.objects.select_related("recipient"), project_id=project_id, channels=channels)
    if status:
        qs = qs.filter(status=status)
    if channel:
        qs = qs.filter(channel=channel)
    if recipient:
        qs = qs.filter(recipient__external_id=recipient)
    if category:
        qs = qs.filter(category=category)
    return qs


def notifications_load_deferred(notifications, fields: tuple[str, ...]) -> None:
    """Fill ``fields`` on the instances that lack them (deferred), in one query.

    The worker's claim returns only the columns delivery needs; reading a
    deferred field would make Django fetch it for that one row, i.e. one query
    per notification. Result hooks that need more (apps.webhooks: metadata)
    call this first.
    """
    missing = [n for n in notifications if any(f not in n.__dict__ for f in fields)]
    if not missing:
        return
    found = {row[0]: row[1:] for row in Notification.objects.filter(pk__in=[n.pk for n in missing])
             .values_list("pk", *fields)}
    for n in missing:
        values = found.get(n.pk)
        if values is not None:
            for field, value in zip(fields, values):
                n.__dict__.setdefault(field, value)


def failed_notifications(*, since: datetime | None = None, channel: str | None = None):
    """Failed notifications (updated since ``since``, of ``channel``), oldest first: what ``replay`` requeues."""
    qs = Notification.objects.filter(status=Status.FAILED)
    if since is not None:
        qs = qs.filter(updated_at__gte=since)
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("id")
