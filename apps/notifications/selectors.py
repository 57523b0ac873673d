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
