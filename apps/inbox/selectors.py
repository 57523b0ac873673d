"""Reads of the in-app inbox."""
from __future__ import annotations

from django.db.models import Count
from rest_framework.fields import DateTimeField

from apps.notifications.models import Status
from apps.notifications.selectors import parse_uuid

from .models import InboxState

VISIBLE_STATUSES = (Status.SENT, Status.DELIVERED)
_datetime = DateTimeField()


def _iso(value):
    return _datetime.to_representation(value) if value else None


def inbox_item(notification, state=None) -> dict:
    """The API shape of one inbox item (also what the live stream pushes)."""
    content = notification.content or {}
    return {
        "id": str(notification.id),
        "title": content.get("title", ""),
        "body": content.get("body", ""),
        "data": content.get("data") or {},
        "category": notification.category,
        "created_at": _iso(notification.created_at),
        "read_at": _iso(state.read_at) if state else None,
        "archived_at": _iso(state.archived_at) if state else None,
    }


def inbox_list(*, recipient_id: int, unread: bool | None = None, archived: bool | None = False,
               category: str | None = None):
    """Inbox entries of one recipient, newest first, with their notification (one query per page)."""
    qs = (
        InboxState.objects.filter(recipient_id=recipient_id, notification__status__in=VISIBLE_STATUSES)
        .select_related("notification")
        .only("notification_id", "recipient_id", "read_at", "archived_at", "notification__id",
              "notification__content", "notification__category", "notification__created_at",
              "notification__status")
    )
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    if category:
        qs = qs.filter(notification__category=category)
    return qs


def inbox_entry_get(*, recipient_id: int, notification_id: str) -> InboxState | None:
    pk = parse_uuid(notification_id)
    if pk is None:
        return None
    return inbox_list(recipient_id=recipient_id, archived=None).filter(notification_id=pk).first()


def inbox_unread_count(*, recipient_id: int) -> int:
    """Unread, not archived (uses the partial index ``inbox_unread_idx``)."""
    return InboxState.objects.filter(recipient_id=recipient_id, read_at__isnull=True, archived_at__isnull=True).count()


def inbox_unread_counts(*, recipient_ids) -> dict[int, int]:
    """Unread counts of many recipients in one query."""
    rows = (
        InboxState.objects.filter(recipient_id__in=list(recipient_ids), read_at__isnull=True,
                                  archived_at__isnull=True)
        .values("recipient_id").annotate(n=Count("pk")).values_list("recipient_id", "n")
    )
    counts = dict.fromkeys(recipient_ids, 0)
    counts.update(dict(rows))
    return counts
