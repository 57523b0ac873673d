"""Writes: creating, enqueuing, replaying notifications."""
from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.apikeys.models import default_project_id
from notifier import metrics
from notifier.ids import uuid7_many
from notifier.interrupts import INTERRUPTS

from . import bulk, policy
from .models import Notification, NotificationEvent, PendingPublish, Status
from .queues import publish_deliveries

logger = logging.getLogger(__name__)


@dataclass
class NotificationSpec:
    """A validated request to send one notification (the output of input validation)."""

    channel: str
    category: str
    priority: str
    content: dict[str, Any]
    recipient: Any = None  # apps.recipients.models.Recipient or None
    to: str = ""
    template: str = ""
    locale: str = ""
    scheduled_for: datetime | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    group_key: str = ""
    # The owner (the API key's project, set by validation); None: the ``default`` project.
    project_id: int | None = None
    # Workflows (apps.workflows): {"key", "window_seconds", "template"} and [{"channel", "after_seconds", "unless"}]
    digest: dict[str, Any] | None = None
    fallback: list[dict[str, Any]] | None = None
    # Set by policy (preferences, quiet hours) before insert:
    status: str = ""
    status_detail: str = ""
    hold_until: datetime | None = None


def _initial_state(spec: NotificationSpec, now: datetime) -> tuple[str, datetime | None, str]:
    """Status, next_attempt_at and event detail for a new notification."""
    if spec.status == Status.SUPPRESSED:
        return Status.SUPPRESSED, None, spec.status_detail
    if spec.digest is not None:  # workflows: held until apps.workflows releases its digest (no time of its own)
        return Status.SCHEDULED, None, f"held for digest {spec.digest['key']!r}"
    release = spec.scheduled_for if spec.scheduled_for and spec.scheduled_for > now else None
    if spec.hold_until and (release is None or spec.hold_until > release):
        return Status.SCHEDULED, spec.hold_until, spec.status_detail or f"held until {spec.hold_until.isoformat()}"
    if release is not None:
        return Status.SCHEDULED, release, f"scheduled for {release.isoformat()}"
    return Status.QUEUED, None, ""


def notifications_create(*, specs: list[NotificationSpec], api_key=None,
                         lean: bool = False) -> list[Notification] | list[Created]:
    """Insert notifications and their first events in one transaction; publish after commit.

    Returns the saved notifications in the order of ``specs`` (``lean``: ``Created`` records).
    """
    now = timezone.now()
    policy.at_acceptance(specs, now)
    api_key_id = api_key.pk if api_key is not None else None
    pending: list = []
    notifications = notifications_insert(specs=specs, api_key_ids=[api_key_id] * len(specs), now=now, lean=lean,
                                         pending=pending)
    created = [(n.channel, n.category, n.priority, n.status) for n in notifications]
    created_ids = [n.id for n in notifications]
    transaction.on_commit(lambda: _count_created(created, created_ids))
    to_publish = [(n.id, n.priority) for n in notifications if n.status == Status.QUEUED]
    if to_publish:
        transaction.on_commit(lambda: enqueue_after_commit(to_publish, pending=pending))
    return notifications


def notification_create_single(*, spec: NotificationSpec, api_key=None) -> Notification:
    """One notification (the single endpoint): joins concurrent ones in a group commit when it can.

    Inside a transaction (an ``Idempotency-Key`` request stores its response in the same one) the
    rows must commit with it, so it is created here, on this connection; otherwise the process's
    group committer creates it together with those of concurrent requests (``groupcommit.py``).
    """
    from .groupcommit import group_committer

    committer = group_committer()
    if committer is None or transaction.get_connection().in_atomic_block:
        return notifications_create(specs=[spec], api_key=api_key)[0]
    return committer.submit([spec], api_key)[0]


# The fields a new notification sets (the rest take their defaults), in row_builder's order.
_INSERT_FIELDS = (
    "id", "channel", "recipient_id", "to", "category", "priority", "template", "locale", "content", "status",
    "scheduled_for", "expires_at", "next_attempt_at", "queued_at", "metadata", "group_key", "api_key_id",
    "project_id", "created_at", "updated_at",
)


class Created:
    """What the batch endpoint needs of a notification it created: no model instance per row."""

    __slots__ = ("id", "channel", "category", "priority", "status")

    def __init__(self, id, channel, category, priority, status):  # noqa: A002 - the notification's id (text)
        self.id, self.channel, self.category, self.priority, self.status = id, channel, category, priority, status


def notifications_insert(*, specs: list[NotificationSpec], api_key_ids: list[Any], now: datetime,
                         lean: bool = False, pending: list | None = None) -> list[Notification] | list[Created]:
    """Insert notifications whose acceptance policy has run, and their first events; commit (or join
    the surrounding transaction). No metrics, no publishing: the caller does those after commit.

    ``lean``: return ``Created`` records (the id as text) instead of model instances.
    ``pending``: when some rows are queued, a ``PendingPublish`` entry is inserted with them and its
    key appended to this list; the caller hands it to ``enqueue_after_commit`` with their publish,
    which deletes the entry once the broker has confirmed it (unless ``NOTIFIER_PUBLISH_GRACE`` is 0)."""
    build = bulk.row_builder(Notification, _INSERT_FIELDS)
    rows: list[list] = []
    event_rows: list[tuple] = []
    default_project = None
    for spec, api_key_id, notification_id in zip(specs, api_key_ids, uuid7_many(len(specs))):
        status, next_attempt_at, detail = _initial_state(spec, now)
        recipient = spec.recipient
        project_id = spec.project_id
        if project_id is None:  # made without an API key (commands, the admin's recurring sends, tests)
            if default_project is None:
                default_project = default_project_id()
            project_id = spec.project_id = default_project
        rows.append(build(
            notification_id, spec.channel, recipient.pk if recipient is not None else None, spec.to, spec.category,
            spec.priority, spec.template, spec.locale, spec.content, status, spec.scheduled_for, spec.expires_at,
            next_attempt_at, now if status == Status.QUEUED else None, spec.metadata, spec.group_key, api_key_id,
            project_id, now, now,
        ))
        event_rows.append((notification_id, status, now, detail or "", "", None))
    pending_key = None  # the PendingPublish key: the first queued row (its millisecond is the group's)
    if pending is not None and getattr(settings, "NOTIFIER_PUBLISH_GRACE", 0) > 0:
        pending_key = next((event[0] for event in event_rows if event[1] == Status.QUEUED), None)
    if lean:
        notifications = [Created(str(row[0]), spec.channel, spec.category, spec.priority, event[1])
                         for row, spec, event in zip(rows, specs, event_rows)]
    else:
        notifications = bulk.instances_from_full_rows(Notification, rows)  # before the JSON values are adapted
        recipient_field = Notification.recipient.field
        for notification, spec in zip(notifications, specs):
            if spec.recipient is not None:
                recipient_field.set_cached_value(notification, spec.recipient)
    # A batch goes by two COPYs in a transaction. A few rows and their events go in ONE statement,
    # atomic by itself: outside a transaction it commits at once (no BEGIN/COMMIT round trips) and
    # the caller's on_commit() callbacks then run right away, as after the commit of a transaction.
    workflows = any(spec.digest is not None or spec.fallback for spec in specs)  # workflows (apps.workflows)
    one_statement = len(rows) <= bulk.SMALL_BATCH and not transaction.get_connection().in_atomic_block \
        and not workflows
    with nullcontext() if one_statement else transaction.atomic():
        bulk.insert_notification_rows(rows, event_rows, pending=pending_key)
        if workflows:  # workflows: digest members and fallback steps, committed with their notifications
            from apps.workflows.hooks import workflows_hold

            workflows_hold(specs=specs, ids=[event[0] for event in event_rows],
                           statuses=[event[1] for event in event_rows], api_key_ids=api_key_ids, now=now)
    if pending_key is not None:
        pending.append(pending_key)
    return notifications


def _count_created(rows: list[tuple[str, str, str, str]], ids: list) -> None:
    """After commit: metrics, and one log line per request (not per row: batches are 1,000)."""
    metrics.notifications_accepted((channel, category, priority) for channel, category, priority, _ in rows)
    metrics.notifications_entered(rows)
    if logger.isEnabledFor(logging.INFO) and rows:
        if len(rows) == 1:
            channel, category, priority, status = rows[0]
            logger.info("notification accepted", extra={"notification_id": str(ids[0]), "channel": channel,
                                                        "category": category, "priority": priority, "status": status})
        else:
            logger.info("%d notifications accepted", len(rows), extra={
                "count": len(rows), "channels": sorted({r[0] for r in rows}), "first_id": str(ids[0]),
                "last_id": str(ids[-1])})


def enqueue_after_commit(items: list[tuple[Any, str]], *, coalesce: bool = True, wait: bool = True,
                         pending: list | tuple = ()) -> None:
    """Publish delivery tasks; if the broker is unreachable, leave the rows due for the dispatcher.

    A few items (the single endpoint) join those of concurrent requests in one
    message (``NOTIFIER_PUBLISH_COALESCE_MS``, see ``publisher.py``); the caller
    still waits for the broker's confirm of that message. ``coalesce=False``: the
    caller has already gathered them (the group committer), publish at once.
    ``wait=False``: hand them to the process's publisher thread and return at once
    (the group committer, unless ``NOTIFIER_ANSWER_AFTER_CONFIRM``); the rows are
    committed, so a publish that fails or never happens is made good by the
    dispatcher (a process that dies first leaves their ``PendingPublish`` entry,
    which the dispatcher finds after ``NOTIFIER_PUBLISH_GRACE`` seconds) or the sweep.
    ``pending``: the keys of the items' ``PendingPublish`` entries (``notifications_insert``),
    deleted by the publisher thread once the items are published (or marked due).
    """
    if not wait:
        _coalescing_publisher(always=True).submit(items, pending=pending)
        return
    publisher = _coalescing_publisher() if coalesce else None
    if publisher is not None and len(items) < publisher.max_items:
        publisher.submit(items, wait=settings.NOTIFIER_PUBLISH_WAIT, pending=pending)
        return
    _publish_or_mark_due(items)
    if pending:
        _coalescing_publisher(always=True).submit([], pending=pending)  # deleted off this thread


_publisher = None


def _coalescing_publisher(*, always: bool = False):
    """The process's coalescing publisher; None when coalescing is off, unless ``always``
    (then one that publishes what it has as soon as it can)."""
    global _publisher
    window = max(getattr(settings, "NOTIFIER_PUBLISH_COALESCE_MS", 0) / 1000, 0.0)
    if window <= 0 and not always:
        return None
    if _publisher is None or _publisher.window != window:
        from .publisher import CoalescingPublisher

        _publisher = CoalescingPublisher(_publish_or_mark_due, window=window, max_items=settings.NOTIFIER_CHUNK_SIZE,
                                         settle=_settle_published, on_idle=_close_thread_connections)
    return _publisher


def _close_thread_connections() -> None:
    """The publisher thread's database connection (it deletes the ``PendingPublish`` entries of what it
    published, and marks rows due after a failed publish) is kept while it works and closed once it has
    been idle for a while or drained: no connection per web process idling on the server, and tests
    drop their database."""
    from django.db import connections

    connections.close_all()


def _settle_published(keys: list) -> None:
    """Delete the ``PendingPublish`` entries of published groups: one statement for every group of a flush."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(PendingPublish._meta.db_table)} "
                           f"WHERE id = ANY(%s::uuid[])", [[str(key) for key in keys]])
    except Exception:  # noqa: BLE001 - left, the dispatcher republishes those groups after the grace (harmless)
        logger.exception("could not delete %d pending-publish entries", len(keys))
        _close_thread_connections()


def publisher_drain(timeout: float = 10.0) -> bool:
    """Publish what the process's publisher thread still holds (before the process exits)."""
    return _publisher.drain(timeout) if _publisher is not None else True


def _publish_or_mark_due(items: list[tuple[Any, str]], *, chunk_size: int | None = None) -> None:
    try:
        if chunk_size is None:
            publish_deliveries(items)
        else:  # a worker's unsent rest, in smaller chunks (delivery.deliver_chunk)
            publish_deliveries(items, chunk_size=chunk_size)
    except Exception as exc:  # noqa: BLE001 - the row is safe in PostgreSQL; the dispatcher republishes it
        logger.exception("publish failed for %d notifications; the dispatcher will republish them", len(items))
        try:
            Notification.objects.filter(id__in=[i for i, _ in items], status=Status.QUEUED).update(
                next_attempt_at=timezone.now())
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - then the sweep finds them by queued_at
            logger.exception("could not mark unpublished notifications as due")
        if isinstance(exc, INTERRUPTS):
            raise  # a worker's task time is up (notifier.interrupts), its rows marked due all the same


def notifications_requeue(*, ids: Iterable[Any], detail: str) -> int:
    """Give failed notifications a fresh retry budget (and claim-timeout count) and put them back on their queues.

    Their attempts and events are kept. Returns how many were requeued.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(id__in=list(ids), status=Status.FAILED)
            .values_list("id", "priority", "attempts", "channel", "category")
        )
        if not rows:
            return 0
        Notification.objects.filter(id__in=[i for i, *_ in rows]).update(
            status=Status.QUEUED, attempts_at_replay=F("attempts"), next_attempt_at=None, queued_at=now,
            claimed_at=None, updated_at=now, claim_timeouts=0,
        )
        NotificationEvent.objects.bulk_create(
            [NotificationEvent(notification_id=i, status=Status.QUEUED, at=now, detail=detail) for i, *_ in rows]
        )
        requeued = [(c, cat, p, Status.QUEUED) for _, p, _, c, cat in rows]
        transaction.on_commit(lambda: metrics.notifications_entered(requeued))
        items = [(i, p) for i, p, *_ in rows]
        transaction.on_commit(lambda: enqueue_after_commit(items))
    return len(rows)


def failed_notifications(*, since: datetime | None = None, channel: str | None = None):
    qs = Notification.objects.filter(status=Status.FAILED)
    if since is not None:
        qs = qs.filter(updated_at__gte=since)
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("id")


def parse_since(value: str) -> datetime:
    """``--since`` accepts an ISO 8601 time or a duration like 30m, 2h, 1d."""
    value = value.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return timezone.now() - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    parsed = datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed
