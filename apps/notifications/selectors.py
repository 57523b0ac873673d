"""Reads."""
from __future__ import annotations

import uuid

from .models import Notification


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def notification_get(notification_id: str) -> Notification | None:
    pk = parse_uuid(notification_id)
    if pk is None:
        return None
    return (
        Notification.objects.select_related("recipient")
        .prefetch_related("events")
        .filter(pk=pk)
        .first()
    )


def notification_list(*, status: str | None = None, channel: str | None = None, recipient: str | None = None,
                      category: str | None = None):
    qs = Notification.objects.select_related("recipient")
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
