"""Channel fallback: an in-app notification still unread after a while is sent on another channel.

A request's ``fallback`` steps are inserted with the in-app notification (same transaction), each
``pending`` with a first due time of its creation (or ``scheduled_for``) plus ``after_seconds``. The
dispatcher (``notifier.dispatch_due``) takes due steps with ``FOR UPDATE SKIP LOCKED`` and decides each
one at that moment (docs/workflows.md):

- the in-app notification was cancelled (or deleted): the step is ``cancelled``;
- it was read (``unless: read``; its inbox entry's ``read_at``): ``skipped``;
- it has not reached the inbox yet (``scheduled``, ``queued``, ``sending``): the step waits; once it is
  ``sent``, the window counts from then (``sent_at + after_seconds``);
- it never will (``failed``, ``suppressed``, ``expired``) or the window has passed unread: the step sends
  a notification on its channel through ``notifications_create`` (preferences, suppression, quiet hours,
  caps, owner project, retries as for any notification) and is ``sent``, pointing at it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.notifications.models import Channel, Notification, Status
from notifier.interrupts import INTERRUPTS
from notifier.sms import sms_info

from .digests import SMS_SUMMARY_CHARS, KeyRef
from .models import FallbackState, FallbackStep

logger = logging.getLogger(__name__)

NOT_IN_INBOX_YET = (Status.SCHEDULED, Status.QUEUED, Status.SENDING)
IN_INBOX = (Status.SENT, Status.DELIVERED)
# A step whose in-app notification has not reached the inbox is looked at again after this long at most.
RECHECK = timedelta(seconds=30)


def hold(entries: list[tuple], now: datetime) -> None:
    """Insert the steps of new in-app notifications, in the caller's transaction.

    ``entries``: ``(spec, notification_id, api_key_id)``."""
    steps = []
    for spec, notification_id, api_key_id in entries:
        start = max(now, spec.scheduled_for) if spec.scheduled_for else now
        for position, step in enumerate(spec.fallback, start=1):
            steps.append(FallbackStep(
                source_id=notification_id, position=position, channel=step["channel"],
                after_seconds=step["after_seconds"], unless=step.get("unless") or "read", project_id=spec.project_id,
                api_key_id=api_key_id, due_at=start + timedelta(seconds=step["after_seconds"]),
            ))
    FallbackStep.objects.bulk_create(steps)


def release_due(*, now: datetime, limit: int = 500) -> int:
    """Decide every pending step due by ``now``; returns how many were decided (sent, skipped, cancelled)."""
    from apps.inbox.models import InboxState

    decided_at = timezone.now()
    with transaction.atomic():
        steps = list(FallbackStep.objects.select_for_update(skip_locked=True)
                     .filter(state=FallbackState.PENDING, due_at__lte=now).order_by("due_at")[:limit])
        if not steps:
            return 0
        source_ids = {step.source_id for step in steps}
        sources = {n.id: n for n in Notification.objects.filter(id__in=source_ids).select_related("recipient")}
        read = dict(InboxState.objects.filter(notification_id__in=source_ids, read_at__isnull=False)
                    .values_list("notification_id", "read_at"))
        decided = 0
        for step in steps:
            source = sources.get(step.source_id)
            wait_until = _wait_until(step, source, now)
            if wait_until is not None:
                step.due_at = wait_until
            else:
                _decide(step, source, read.get(step.source_id))
                step.decided_at = decided_at
                decided += 1
        FallbackStep.objects.bulk_update(steps, ["due_at", "state", "detail", "decided_at", "notification"])
    return decided


def _wait_until(step: FallbackStep, source: Notification | None, now: datetime) -> datetime | None:
    """When to look at ``step`` again, or None to decide it now."""
    if source is None or source.status == Status.CANCELLED:
        return None
    if source.status in NOT_IN_INBOX_YET:
        return now + min(RECHECK, timedelta(seconds=step.after_seconds))
    if source.status in IN_INBOX and source.sent_at is not None:
        due = source.sent_at + timedelta(seconds=step.after_seconds)
        return due if due > now else None
    return None


def _decide(step: FallbackStep, source: Notification | None, read_at) -> None:
    if source is None:
        step.state, step.detail = FallbackState.CANCELLED, "the in-app notification no longer exists"
    elif source.status == Status.CANCELLED:
        step.state, step.detail = FallbackState.CANCELLED, "the in-app notification was cancelled"
    elif step.unless == "read" and read_at is not None:
        step.state, step.detail = FallbackState.SKIPPED, f"read at {read_at.isoformat()}"
    else:
        _send(step, source)


def _send(step: FallbackStep, source: Notification) -> None:
    from apps.notifications.intake.create import notifications_create
    from apps.notifications.specs import NotificationSpec

    recipient = source.recipient
    missing = ("the recipient no longer exists" if recipient is None else
               "the recipient has no email address" if step.channel == Channel.EMAIL and not recipient.email else
               "the recipient has no phone number" if step.channel == Channel.SMS and not recipient.phone else "")
    if missing:
        step.state, step.detail = FallbackState.SKIPPED, missing
        return
    spec = NotificationSpec(
        channel=step.channel, category=source.category, priority=source.priority,
        content=fallback_content(step.channel, source.content or {}), recipient=recipient, locale=source.locale,
        metadata={**(source.metadata or {}), "fallback_of": str(source.id), "fallback_step": step.position},
        project_id=source.project_id,
    )
    try:
        with transaction.atomic():
            created = notifications_create(specs=[spec], api_key=KeyRef(step.api_key_id) if step.api_key_id else None)
    except INTERRUPTS:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the step; the other steps go on
        logger.exception("fallback step %s of %s could not be sent", step.position, source.id)
        step.state, step.detail = FallbackState.SKIPPED, f"could not be sent: {type(exc).__name__}: {exc}"[:255]
        return
    step.state, step.notification_id = FallbackState.SENT, created[0].id
    step.detail = "unread" if source.status in IN_INBOX else f"the in-app notification was {source.status}"


def fallback_content(channel: str, content: dict) -> dict:
    """The in-app content on ``channel``: title as the subject (email) or title, body as the body."""
    title, body = content.get("title", ""), content.get("body", "")
    if channel == Channel.EMAIL:
        return {"subject": title, "body": body}
    if channel == Channel.SMS:
        text = f"{title}: {body}" if title and body else title or body
        if len(text) > SMS_SUMMARY_CHARS:
            text = text[:SMS_SUMMARY_CHARS - 1] + "…"
        return {"body": text, "sms": sms_info(text).as_dict()}
    return {"title": title, "body": body, **({"data": content["data"]} if content.get("data") else {})}


def fallback_cancel(*, notification_id, project_id: int, channels=None) -> int | None:
    """Cancel the pending steps of one of the owner's notifications; None: no such notification."""
    from apps.notifications.selectors import owned

    if not owned(Notification.objects.filter(pk=notification_id), project_id=project_id, channels=channels).exists():
        return None
    return FallbackStep.objects.filter(source_id=notification_id, state=FallbackState.PENDING).update(
        state=FallbackState.CANCELLED, detail="cancelled through the API", decided_at=timezone.now())
