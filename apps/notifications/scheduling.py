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
from .selectors import owned

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


def _owned(notification_id, project_id: int | None, channels):
    """The notification's row, narrowed to its owner when ``project_id`` is given (the API; the admin and
    commands give none)."""
    qs = Notification.objects.filter(pk=notification_id)
    return owned(qs, project_id=project_id, channels=channels) if project_id is not None else qs


def notification_cancel(*, notification_id, detail: str = "cancelled", project_id: int | None = None,
                        channels=None) -> None:
    """Cancel one notification that has not started sending.

    With ``project_id`` (and ``channels``), only a notification of that owner: another one is ``NotFound``.
    Raises ``NotFound`` or ``Conflict`` (it is sending, sent or already final).
    """
    now = timezone.now()
    with transaction.atomic():
        changed = _owned(notification_id, project_id, channels).filter(status__in=CANCELLABLE).update(
            status=Status.CANCELLED, next_attempt_at=None, updated_at=now,
        )
        if changed:
            NotificationEvent.objects.create(notification_id=notification_id, status=Status.CANCELLED, at=now,
                                             detail=detail)
            _count_after_commit([notification_id], Status.CANCELLED)
    if not changed:
        raise _why_not(notification_id, "cancel", project_id, channels)


def notifications_cancel_group(*, group_key: str = "", broadcast_id=None, detail: str | None = None,
                               project_id: int | None = None, channels=None) -> int:
    """Cancel every notification of ``group_key`` (or, given ``broadcast_id``, of that broadcast) that has
    not started sending. Returns how many.

    With ``project_id``, only that project's notifications of the group (and of ``channels`` when given):
    a group key names a group within a project. One statement: the UPDATE and the INSERT of their
    events, however large the group.
    """
    now = timezone.now()
    detail = detail or f"cancelled with group {group_key!r}"
    group, group_value = ("broadcast_id", broadcast_id) if broadcast_id is not None else ("group_key", group_key)
    owner, owner_params = "", []
    if project_id is not None:
        owner, owner_params = " AND project_id = %s", [project_id]
        if channels:
            owner += " AND channel = ANY(%s)"
            owner_params.append(list(channels))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH cancelled AS (
                UPDATE {TABLE} SET status = %s, next_attempt_at = NULL, updated_at = %s
                WHERE {group} = %s AND status IN (%s, %s){owner}
                RETURNING id, channel, category, priority
            ), events AS (
                INSERT INTO {EVENTS} (notification_id, status, at, detail, provider)
                SELECT id, %s, %s, %s, '' FROM cancelled
            )
            SELECT channel, category, priority, count(*) FROM cancelled GROUP BY channel, category, priority
            """,
            [Status.CANCELLED, now, group_value, *CANCELLABLE, *owner_params, Status.CANCELLED, now, detail],
        )
        groups = cursor.fetchall()
    metrics.notifications_entered(
        (channel, category, priority, Status.CANCELLED)
        for channel, category, priority, count in groups for _ in range(count)
    )
    return sum(count for *_, count in groups)


def notification_reschedule(*, notification_id, scheduled_for: datetime, project_id: int | None = None,
                            channels=None) -> None:
    """Move a still ``scheduled`` notification to ``scheduled_for``.

    A time in the past means "as soon as possible": the dispatcher releases it on
    its next run. With ``project_id`` (and ``channels``), only a notification of that owner.
    Raises ``NotFound``, ``Conflict`` (no longer scheduled), or
    ``ValueError`` when the notification would expire before its new time.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = (
            _owned(notification_id, project_id, channels).filter(status=Status.SCHEDULED)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=scheduled_for))
            .update(scheduled_for=scheduled_for, next_attempt_at=scheduled_for, updated_at=now)
        )
        if changed:
            NotificationEvent.objects.create(notification_id=notification_id, status=Status.SCHEDULED, at=now,
                                             detail=f"rescheduled for {scheduled_for.isoformat()}")
            _count_after_commit([notification_id], Status.SCHEDULED)
    if changed:
        return
    current = _owned(notification_id, project_id, channels).values_list("status", "expires_at").first()
    if current is not None and current[0] == Status.SCHEDULED:
        raise ValueError(f"It expires at {current[1].isoformat()}, before the new time.")
    raise _why_not(notification_id, "reschedule", project_id, channels)


def _count_after_commit(ids, status: str) -> None:
    """Count the status entered in ``notifier_notifications_total`` once the change is committed."""
    rows = list(Notification.objects.filter(pk__in=ids).values_list("channel", "category", "priority"))
    transaction.on_commit(lambda: metrics.notifications_entered((c, cat, p, status) for c, cat, p in rows))


def _why_not(notification_id, action: str, project_id: int | None = None, channels=None) -> Exception:
    current = _owned(notification_id, project_id, channels).values_list("status", flat=True).first()
    if current is None:
        return NotFound(str(notification_id))
    allowed = "scheduled or queued" if action == "cancel" else "scheduled"
    return Conflict(f"Cannot {action} a notification that is {current}; only {allowed} ones can be.",
                    status=current)
