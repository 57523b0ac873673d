"""Writes on notifications that have not started sending: cancel, cancel a group, reschedule.

Each is one conditional UPDATE (no read-then-write): the row changes only if it
is still in a state that allows it, so a worker's claim (``queued`` →
``sending``) and a cancel can race and exactly one of them wins. The event row
is written in the same transaction.
"""
from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from notifier import metrics

from .models import Notification, NotificationEvent, Status

TABLE = Notification._meta.db_table
EVENTS = NotificationEvent._meta.db_table

# Not started sending: waiting for its time (or a quiet-hours hold), for a worker, or for a retry.
CANCELLABLE = (Status.SCHEDULED, Status.QUEUED)


class NotFound(Exception):
    """No notification with that id."""


class Conflict(Exception):
    """The notification is no longer in a state that allows the change."""

    def __init__(self, message: str, *, status: str):
        super().__init__(message)
        self.status = status


def notification_cancel(*, notification_id, detail: str = "cancelled") -> None:
    """Cancel one notification that has not started sending.

    Raises ``NotFound`` or ``Conflict`` (it is sending, sent or already final).
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Notification.objects.filter(pk=notification_id, status__in=CANCELLABLE).update(
            status=Status.CANCELLED, next_attempt_at=None, updated_at=now,
        )
        if changed:
            NotificationEvent.objects.create(notification_id=notification_id, status=Status.CANCELLED, at=now,
                                             detail=detail)
            _count_after_commit([notification_id], Status.CANCELLED)
    if not changed:
        raise _why_not(notification_id, "cancel")


def notifications_cancel_group(*, group_key: str, detail: str | None = None) -> int:
    """Cancel every notification of ``group_key`` that has not started sending. Returns how many.

    One statement: the UPDATE and the INSERT of their events, however large the group.
    """
    now = timezone.now()
    detail = detail or f"cancelled with group {group_key!r}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH cancelled AS (
                UPDATE {TABLE} SET status = %s, next_attempt_at = NULL, updated_at = %s
                WHERE group_key = %s AND status IN (%s, %s)
                RETURNING id, channel, category, priority
            ), events AS (
                INSERT INTO {EVENTS} (notification_id, status, at, detail, provider)
                SELECT id, %s, %s, %s, '' FROM cancelled
            )
            SELECT channel, category, priority, count(*) FROM cancelled GROUP BY channel, category, priority
            """,
            [Status.CANCELLED, now, group_key, *CANCELLABLE, Status.CANCELLED, now, detail],
        )
        groups = cursor.fetchall()
    metrics.notifications_entered(
        (channel, category, priority, Status.CANCELLED)
        for channel, category, priority, count in groups for _ in range(count)
    )
    return sum(count for *_, count in groups)


def notification_reschedule(*, notification_id, scheduled_for: datetime) -> None:
    """Move a still ``scheduled`` notification to ``scheduled_for``.

    A time in the past means "as soon as possible": the dispatcher releases it on
    its next run. Raises ``NotFound``, ``Conflict`` (no longer scheduled), or
    ``ValueError`` when the notification would expire before its new time.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Notification.objects.filter(pk=notification_id, status=Status.SCHEDULED)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=scheduled_for))
            .update(scheduled_for=scheduled_for, next_attempt_at=scheduled_for, updated_at=now)
        )
        if changed:
            NotificationEvent.objects.create(notification_id=notification_id, status=Status.SCHEDULED, at=now,
                                             detail=f"rescheduled for {scheduled_for.isoformat()}")
            _count_after_commit([notification_id], Status.SCHEDULED)
    if changed:
        return
    current = Notification.objects.filter(pk=notification_id).values_list("status", "expires_at").first()
    if current is not None and current[0] == Status.SCHEDULED:
        raise ValueError(f"It expires at {current[1].isoformat()}, before the new time.")
    raise _why_not(notification_id, "reschedule")


def _count_after_commit(ids, status: str) -> None:
    """Count the status entered in ``notifier_notifications_total`` once the change is committed."""
    rows = list(Notification.objects.filter(pk__in=ids).values_list("channel", "category", "priority"))
    transaction.on_commit(lambda: metrics.notifications_entered((c, cat, p, status) for c, cat, p in rows))


def _why_not(notification_id, action: str) -> Exception:
    current = Notification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
    if current is None:
        return NotFound(str(notification_id))
    allowed = "scheduled or queued" if action == "cancel" else "scheduled"
    return Conflict(f"Cannot {action} a notification that is {current}; only {allowed} ones can be.",
                    status=current)
