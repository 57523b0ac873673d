"""Writes for broadcasts: accepting one, expanding it into notifications, starting due ones, cancelling.

Accepting stores one ``Broadcast`` row and publishes one ``notifier.broadcast_expand`` message after the
commit, so the API answers at once whatever the topic's size. The expander then takes the topic's
subscribers a page (``NOTIFIER_BROADCAST_PAGE``) at a time, in recipient id order
(``apps.topics.selectors.topic_subscriber_page``: those who muted the topic on the channel are left out),
and hands each page to the batch path (``intake.create.notifications_create``: the acceptance policy, i.e.
the suppression list, preferences, quiet hours and frequency caps; two COPYs; one delivery message per chunk
after the commit). Notification statuses change only there and through ``commands`` (the cancel), i.e.
through ``apps.notifications.lifecycle``. The page's notifications and the broadcast's cursor commit together, under the
broadcast's row lock: a page is created once, whoever crashes when, and a cancel waits for the page in
progress and then stops the next one.

Only one expander runs at a time (a PostgreSQL advisory lock held by its connection, released if its
process dies), for at most ``NOTIFIER_BROADCAST_SLICE`` seconds per task: it then publishes a task for the
broadcast that waited longest and ends, so broadcasts take turns and the maintenance pool always keeps a
thread for the dispatcher. The beat job ``notifier.broadcasts_due`` starts scheduled broadcasts whose time
has come and restarts expansion when no expander is running (a lost message, a killed worker).
"""
from __future__ import annotations

import gc
import logging
import time
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.notifications.commands import Conflict, NotFound, notifications_cancel_group
from apps.notifications.intake import backpressure
from apps.notifications.specs import NotificationSpec

from .expansion import create_page
from .models import Broadcast, BroadcastStatus
from .selectors import owned_broadcasts

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the expander (one per database): "bcst".
EXPANDER_LOCK = 0x62637374


def _page_size() -> int:
    return max(1, settings.NOTIFIER_BROADCAST_PAGE)


def _slice_seconds() -> float:
    return settings.NOTIFIER_BROADCAST_SLICE


# --- accepting -----------------------------------------------------------------------------------------

def broadcast_create(*, spec: NotificationSpec, template_context: Any, api_key) -> Broadcast:
    """Store a validated broadcast request (``spec.topic`` set) and, after the commit, start expanding it
    (at once, or at ``spec.scheduled_for``)."""
    from apps.apikeys.models import default_project_id

    now = timezone.now()
    scheduled = spec.scheduled_for is not None and spec.scheduled_for > now
    broadcast = Broadcast.objects.create(
        project_id=spec.project_id or default_project_id(), api_key_id=api_key.pk if api_key is not None else None,
        channel=spec.channel, topic=spec.topic, topic_key=spec.topic.key, category=spec.category,
        priority=spec.priority, template=spec.template, locale=spec.locale,
        template_context=template_context if spec.template and isinstance(template_context, dict) else {},
        content=spec.content, scheduled_for=spec.scheduled_for, expires_at=spec.expires_at, metadata=spec.metadata,
        group_key=spec.group_key, status=BroadcastStatus.SCHEDULED if scheduled else BroadcastStatus.EXPANDING,
        started_at=None if scheduled else now,
    )
    if not scheduled:
        transaction.on_commit(lambda: start_expander(broadcast.id))
    return broadcast


def broadcast_accept(*, spec: NotificationSpec, data: Any, api_key) -> Broadcast:
    """``broadcast_create`` for a request (``data``: its JSON, whose template ``context`` is kept)."""
    context = data.get("context") if isinstance(data, dict) else None
    return broadcast_create(spec=spec, template_context=context, api_key=api_key)


def start_expander(broadcast_id=None) -> None:
    """Publish ``notifier.broadcast_expand``; if the broker cannot take it, the beat job starts it later."""
    from .tasks import broadcast_expand

    try:
        broadcast_expand.delay(str(broadcast_id) if broadcast_id is not None else None)
    except Exception:  # noqa: BLE001 - the broadcast is stored; notifier.broadcasts_due starts it
        logger.exception("could not publish the expansion of broadcast %s; the beat job will start it", broadcast_id)


# --- expanding -----------------------------------------------------------------------------------------

@contextmanager
def expander_lock():
    """True while this connection holds the expander's advisory lock, False if another one holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [EXPANDER_LOCK])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [EXPANDER_LOCK])


def expander_running() -> bool:
    """Whether some connection holds the expander's lock."""
    with expander_lock() as held:
        return not held


def broadcasts_expand(*, first=None, budget: float | None = None) -> dict[str, int]:
    """Expand broadcasts for at most ``budget`` seconds (``NOTIFIER_BROADCAST_SLICE``): ``first`` (an id),
    then the expanding broadcast that waited longest, and so on. Returns ``{"pages", "created"}``; nothing
    when another expander is running (it takes the waiting broadcasts in turn). With work left at the end
    of the budget, publishes a task that goes on with the broadcast that waited longest."""
    budget = _slice_seconds() if budget is None else budget
    deadline = time.monotonic() + budget
    done = {"pages": 0, "created": 0}
    with expander_lock() as held:
        if not held:
            return done
        broadcast_id = first
        while True:
            if broadcast_id is None:
                broadcast_id = _waiting_longest()
                if broadcast_id is None:
                    return done
            pages, created, more = _expand(broadcast_id, deadline)
            done["pages"] += pages
            done["created"] += created
            if time.monotonic() >= deadline:
                break
            broadcast_id = None  # that one is finished (or was not expanding): the next one
    if more or _waiting_longest() is not None:
        start_expander(None)
    return done


def _waiting_longest():
    return (Broadcast.objects.filter(status=BroadcastStatus.EXPANDING).order_by("updated_at")
            .values_list("id", flat=True).first())


def _expand(broadcast_id, deadline: float) -> tuple[int, int, bool]:
    """Pages of one broadcast until it is finished or ``deadline``; (pages, created, more left)."""
    pages = created = 0
    renders: dict[str, dict] = {}
    while True:
        priority = Broadcast.objects.filter(pk=broadcast_id).values_list("priority", flat=True).first()
        if priority is None:
            return pages, created, False
        backpressure.wait_for_room([priority])  # the batch path's backpressure: feed the queue as workers drain it
        made, more = expand_page(broadcast_id, renders=renders)
        if made is None:
            return pages, created, False
        pages += 1
        created += made
        if not more:
            return pages, created, False
        if time.monotonic() >= deadline:
            return pages, created, True


def expand_page(broadcast_id, *, renders: dict | None = None, limit: int | None = None) -> tuple[int | None, bool]:
    """Create the notifications of the broadcast's next page of subscribers, in one transaction with its
    cursor. Returns (notifications created, whether subscribers are left); (None, False) when the broadcast
    is not expanding (finished, cancelled, scheduled, gone)."""
    renders = {} if renders is None else renders
    with _collector_paused(), transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().filter(
            pk=broadcast_id, status=BroadcastStatus.EXPANDING).first()
        if broadcast is None:
            return None, False
        now = timezone.now()
        if broadcast.topic_id is None:  # the topic was deleted, and its subscriptions with it
            after, created, skipped = None, 0, 0
        else:
            after, created, skipped = create_page(broadcast, limit=limit or _page_size(), renders=renders)
        broadcast.created += created
        broadcast.skipped += skipped
        fields = ["created", "skipped", "updated_at"]
        if after is None:
            broadcast.status, broadcast.finished_at = BroadcastStatus.EXPANDED, now
            fields += ["status", "finished_at"]
        else:
            broadcast.cursor = after
            fields.append("cursor")
        broadcast.save(update_fields=fields)
    return created, after is not None


@contextmanager
def _collector_paused():
    """The cyclic garbage collector off while a page is made: a page's thousands of recipients, specs and rows
    set off many collections (a third of the expander's CPU, measured), and every one of them is freed by
    reference counting when the page is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- beat --------------------------------------------------------------------------------------------

def broadcasts_due() -> dict[str, int]:
    """Beat: start the scheduled broadcasts whose time has come; start the expander if broadcasts are
    expanding and none runs (its message was lost, or its worker died)."""
    now = timezone.now()
    # A broadcast's own status (notifications change theirs only through apps.notifications.lifecycle).
    started = Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED, scheduled_for__lte=now).update(
        status=BroadcastStatus.EXPANDING, started_at=now, updated_at=now)
    waiting = Broadcast.objects.filter(status=BroadcastStatus.EXPANDING).exists()
    kicked = waiting and not expander_running()
    if kicked:
        start_expander(None)
    return {"started": started, "kicked": int(kicked)}


# --- cancel and reschedule ---------------------------------------------------------------------------

def broadcast_cancel(*, broadcast_id, project_id: int | None = None, channels=None) -> int:
    """Stop the broadcast and cancel its notifications that have not started sending (the notifications'
    own group cancel); returns how many were cancelled. Raises ``NotFound`` (another owner's too) or
    ``Conflict`` (already cancelled)."""
    now = timezone.now()
    with transaction.atomic():
        broadcast = owned_broadcasts(project_id=project_id, channels=channels).select_for_update().filter(
            pk=broadcast_id).first()
        if broadcast is None:
            raise NotFound(str(broadcast_id))
        if broadcast.status == BroadcastStatus.CANCELLED:
            raise Conflict("The broadcast is already cancelled.", status=broadcast.status)
        broadcast.status, broadcast.finished_at = BroadcastStatus.CANCELLED, now
        broadcast.save(update_fields=["status", "finished_at", "updated_at"])
        return notifications_cancel_group(broadcast_id=broadcast.id, detail=f"cancelled with broadcast {broadcast.id}")


def broadcast_reschedule(*, broadcast_id, scheduled_for, project_id: int | None = None, channels=None) -> None:
    """Move a broadcast that is still ``scheduled`` (nothing created yet) to ``scheduled_for``; a past time
    starts it on the beat job's next run. Raises ``NotFound`` or ``Conflict``."""
    with transaction.atomic():
        broadcast = owned_broadcasts(project_id=project_id, channels=channels).select_for_update().filter(
            pk=broadcast_id).first()
        if broadcast is None:
            raise NotFound(str(broadcast_id))
        if broadcast.status != BroadcastStatus.SCHEDULED:
            raise Conflict(f"Cannot reschedule a broadcast that is {broadcast.status}; only scheduled ones can be.",
                           status=broadcast.status)
        if broadcast.expires_at is not None and broadcast.expires_at <= scheduled_for:
            raise ValueError(f"It expires at {broadcast.expires_at.isoformat()}, before the new time.")
        broadcast.scheduled_for = scheduled_for
        broadcast.save(update_fields=["scheduled_for", "updated_at"])


# --- counts ------------------------------------------------------------------------------------------

def broadcast_counts(broadcast: Broadcast) -> dict[str, int]:
    """Its notifications per status, counted at most every ``NOTIFIER_BROADCAST_COUNTS_TTL`` seconds
    (a million rows take a while) and kept on the row."""
    from .selectors import notification_counts

    ttl = settings.NOTIFIER_BROADCAST_COUNTS_TTL
    now = timezone.now()
    if broadcast.counts_at is not None and (now - broadcast.counts_at).total_seconds() < ttl:
        return broadcast.counts
    counts = notification_counts(broadcast.id)
    Broadcast.objects.filter(pk=broadcast.pk).update(counts=counts, counts_at=now)
    broadcast.counts, broadcast.counts_at = counts, now
    return counts
