"""Operator and API commands on existing notifications: cancel (one, or a group), reschedule, requeue.

Each is one conditional statement through ``lifecycle.transition``: the row changes only if it is still
in a status that allows it, so a worker's claim (``queued`` → ``sending``) and a cancel can race and
exactly one of them wins. The event row is written in the same statement.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import lifecycle, outbox
from .models import Notification, Status
from .selectors import owned

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
    changed = lifecycle.transition(_owned(notification_id, project_id, channels), allowed=CANCELLABLE,
                                   to=Status.CANCELLED, detail=detail, fields={"next_attempt_at": None})
    if not changed:
        raise _why_not(notification_id, "cancel", project_id, channels)


def notifications_cancel_group(*, group_key: str, detail: str | None = None, project_id: int | None = None,
                               channels=None) -> int:
    """Cancel every notification of ``group_key`` that has not started sending. Returns how many.

    With ``project_id``, only that project's notifications of the group (and of ``channels`` when given):
    a group key names a group within a project. One statement: the UPDATE and the INSERT of their
    events, however large the group.
    """
    rows = Notification.objects.filter(group_key=group_key)
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
        if channels:
            rows = rows.filter(channel__in=list(channels))
    return len(lifecycle.transition(rows, allowed=CANCELLABLE, to=Status.CANCELLED,
                                    detail=detail or f"cancelled with group {group_key!r}",
                                    fields={"next_attempt_at": None}))


def notification_reschedule(*, notification_id, scheduled_for: datetime, project_id: int | None = None,
                            channels=None) -> None:
    """Move a still ``scheduled`` notification to ``scheduled_for``.

    A time in the past means "as soon as possible": the dispatcher releases it on
    its next run. With ``project_id`` (and ``channels``), only a notification of that owner.
    Raises ``NotFound``, ``Conflict`` (no longer scheduled), or
    ``ValueError`` when the notification would expire before its new time.
    """
    rows = _owned(notification_id, project_id, channels).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=scheduled_for))
    if lifecycle.transition(rows, allowed=[Status.SCHEDULED], to=Status.SCHEDULED,
                            detail=f"rescheduled for {scheduled_for.isoformat()}",
                            fields={"scheduled_for": scheduled_for, "next_attempt_at": scheduled_for}):
        return
    current = _owned(notification_id, project_id, channels).values_list("status", "expires_at").first()
    if current is not None and current[0] == Status.SCHEDULED:
        raise ValueError(f"It expires at {current[1].isoformat()}, before the new time.")
    raise _why_not(notification_id, "reschedule", project_id, channels)


def _why_not(notification_id, action: str, project_id: int | None = None, channels=None) -> Exception:
    current = _owned(notification_id, project_id, channels).values_list("status", flat=True).first()
    if current is None:
        return NotFound(str(notification_id))
    allowed = "scheduled or queued" if action == "cancel" else "scheduled"
    return Conflict(f"Cannot {action} a notification that is {current}; only {allowed} ones can be.",
                    status=current)


def notifications_requeue(*, ids: Iterable[Any], detail: str) -> int:
    """Give failed notifications a fresh retry budget (and claim-timeout count) and put them back on their queues.

    Their attempts and events are kept. Returns how many were requeued.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Notification.objects.select_for_update(skip_locked=True).filter(id__in=list(ids), status=Status.FAILED)
        moved = lifecycle.transition(rows, allowed=[Status.FAILED], to=Status.QUEUED, detail=detail, now=now, fields={
            "attempts_at_replay": F("attempts"), "next_attempt_at": None, "queued_at": now, "claimed_at": None,
            "claim_timeouts": 0})
        if moved:
            outbox.publish_on_commit([(i, priority) for i, _, _, priority in moved])
    return len(moved)
