"""Reads for broadcasts."""
from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from apps.notifications.models import Notification, Status
from apps.notifications.selectors import parse_uuid

from .models import Broadcast


def owned_broadcasts(*, project_id: int | None, channels=None) -> QuerySet[Broadcast]:
    """Broadcasts a key of ``project_id`` may see: its project's, of ``channels`` only when given (a key's
    ``allowed_channels``). ``project_id`` None: every broadcast (the admin, commands)."""
    queryset = Broadcast.objects.all()
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    if channels:
        queryset = queryset.filter(channel__in=list(channels))
    return queryset


def broadcast_get(broadcast_id: str, *, project_id: int, channels=None) -> Broadcast | None:
    """The broadcast, if it belongs to ``project_id`` (and is of one of ``channels`` when given): another
    owner's broadcast is not found, like one that does not exist."""
    pk = parse_uuid(broadcast_id)
    if pk is None:
        return None
    return owned_broadcasts(project_id=project_id, channels=channels).filter(pk=pk).first()


def notification_counts(broadcast_id) -> dict[str, int]:
    """``{status: n}`` of the broadcast's notifications, every status (0 for none): one range of the
    (broadcast_id, status) index."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status, count(*) FROM {Notification._meta.db_table} WHERE broadcast_id = %s "
                       f"GROUP BY status", [broadcast_id])
        found = dict(cursor.fetchall())
    return {status: found.get(status, 0) for status in Status.values}
