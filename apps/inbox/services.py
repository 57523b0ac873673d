"""Writes on the in-app inbox: read, unread, archive. Reading marks the notification ``delivered``."""
from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from apps.notifications import lifecycle
from apps.notifications.models import Notification, Status

from . import pubsub
from .models import InboxState
from .selectors import inbox_item, inbox_list, inbox_unread_count

INBOX_TABLE = InboxState._meta.db_table
# A live update lists the changed items when there are at most this many.
MAX_ITEMS_PER_UPDATE = 100


def inbox_mark_read(*, recipient_id: int, notification_ids: list | None = None) -> list:
    """Mark unread entries read (all of them when ``notification_ids`` is None).

    Their notifications become ``delivered`` (with ``delivered_at`` and an
    event) and ``notification.delivered`` webhook events are emitted. Returns
    the ids that changed.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = _set_time(recipient_id, notification_ids, "read_at", now)
        if changed:
            delivered = _mark_delivered(changed, now)
            if delivered:
                from apps.webhooks.services import webhook_events_emit

                webhook_events_emit(event="notification.delivered", notification_ids=delivered)
        _publish_update(recipient_id, changed)
    return changed


def inbox_mark_unread(*, recipient_id: int, notification_ids: list) -> list:
    """Unread again (the notification stays ``delivered``: it was seen)."""
    with transaction.atomic():
        changed = _set_time(recipient_id, notification_ids, "read_at", None)
        _publish_update(recipient_id, changed)
    return changed


def inbox_archive(*, recipient_id: int, notification_ids: list, archived: bool = True) -> list:
    with transaction.atomic():
        changed = _set_time(recipient_id, notification_ids, "archived_at", timezone.now() if archived else None)
        _publish_update(recipient_id, changed)
    return changed


def _set_time(recipient_id: int, notification_ids: list | None, field: str, value) -> list:
    assert field in ("read_at", "archived_at")
    where = ["recipient_id = %s"]
    params: list = [value, recipient_id]
    if notification_ids is not None:
        where.append("notification_id = ANY(%s::uuid[])")
        params.append([str(i) for i in notification_ids])
    # Only rows that change: setting touches unset rows, clearing touches set ones.
    where.append(f"{field} IS NOT NULL" if value is None else f"{field} IS NULL")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {INBOX_TABLE} SET {field} = %s WHERE {' AND '.join(where)} RETURNING notification_id",
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def _mark_delivered(notification_ids: list, now) -> list:
    moved = lifecycle.transition(Notification.objects.filter(id__in=[str(i) for i in notification_ids]),
                                 allowed=[Status.SENT], to=Status.DELIVERED, detail="read in the in-app inbox",
                                 now=now, fields={"delivered_at": now})
    return [row[0] for row in moved]


def _publish_update(recipient_id: int, changed: list) -> None:
    if not changed:
        return
    message: dict = {"type": "update", "unread_count": inbox_unread_count(recipient_id=recipient_id)}
    if len(changed) <= MAX_ITEMS_PER_UPDATE:
        entries = inbox_list(recipient_id=recipient_id, archived=None).filter(notification_id__in=changed)
        message["items"] = [inbox_item(e.notification, e) for e in entries]
    else:
        message["refresh"] = True
    transaction.on_commit(lambda: pubsub.publish({recipient_id: message}))
