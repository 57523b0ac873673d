"""Every change of a notification's status: the transition, its event, and its count in
``notifier_notifications_total`` (``metrics.notifications_entered``) once committed.

The hot paths' statements are ``store``'s (insert, claim, results, put back: each writes its rows and
their events in one statement); they are counted here. Every other change goes through
``transition`` (one statement: the rows that are still in an allowed status move, each gets its event)
or is one of the dispatcher's and the sweep's statements below. ``tests/app/test_module_layout.py``
checks that nothing else writes a status.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Callable, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from notifier import clock, metrics
from notifier.context import reset_request_id, set_request_id

from .models import Notification, NotificationEvent, PendingPublish, Status

logger = logging.getLogger(__name__)

TABLE = Notification._meta.db_table
EVENTS_TABLE = NotificationEvent._meta.db_table
PENDING_TABLE = PendingPublish._meta.db_table

# Metric labels, read in C (a chunk's rows mostly share them: counted first, then one increment each).
_labels = attrgetter("channel", "category", "priority")
_result_labels = attrgetter("notification.channel", "notification.category", "notification.priority", "status")


# --- counting --------------------------------------------------------------------------

def entered(rows: Iterable[tuple[str, str, str, str]] | dict) -> None:
    """Count notifications entering a status now: (channel, category, priority, status) rows, or counts."""
    metrics.notifications_entered(rows)


def entered_after_commit(rows: list[tuple[str, str, str, str]]) -> None:
    """Count them once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: metrics.notifications_entered(rows))


def claimed(rows: list[Notification]) -> list[Notification]:
    """Count a claim's rows entering ``sending`` (``store.claim``); returns them."""
    if rows:
        metrics.notifications_entered(
            {(*labels, Status.SENDING): count for labels, count in Counter(map(_labels, rows)).items()})
    return rows


def results_entered(results: list) -> None:
    """Count recorded results (``store.write_results``; ``specs.Result``) by the status each entered."""
    metrics.notifications_entered(Counter(map(_result_labels, results)))


def created(rows: list[tuple[str, str, str, str]], ids: list) -> None:
    """After commit: metrics, and one log line per request (not per row: batches are 1,000)."""
    metrics.notifications_accepted((channel, category, priority) for channel, category, priority, _ in rows)
    metrics.notifications_entered(rows)
    _log_created(rows, ids)


def created_by_requests(requests: list[tuple[str | None, list[tuple[str, str, str, str]], list]]) -> None:
    """``created`` for the requests of a group commit, each (request id, rows, ids): the metrics once for
    the whole group (a write per label set, not per request), and one log line for the group.

    A group of one request logs as any request does (``notification accepted`` under its request id).
    A group of several logs one line, ``N notifications accepted``: ``notification_ids`` and, for each of
    them, the id of the request that created it (``request_ids``), with the group's channels, priorities
    and statuses. A search for a request id or a notification id still finds its line. At a thousand
    single requests a second, a line per request cost the web process ≈15 µs and the process manager
    that prefixes each line (honcho, ``make run``) ≈70 µs more: a tenth of the CPU of a single create
    (docs/performance.md)."""
    rows = [row for _, request_rows, _ in requests for row in request_rows]
    metrics.notifications_accepted((channel, category, priority) for channel, category, priority, _ in rows)
    metrics.notifications_entered(rows)
    if not rows or not logger.isEnabledFor(logging.INFO):
        return
    if len(requests) == 1:
        request_id, request_rows, ids = requests[0]
        token = set_request_id(request_id)
        try:
            _log_created(request_rows, ids)
        finally:
            reset_request_id(token)
        return
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row[3]] = statuses.get(row[3], 0) + 1
    logger.info("%d notifications accepted", len(rows), extra={
        "count": len(rows),
        "notification_ids": [str(i) for _, _, ids in requests for i in ids],
        "request_ids": [request_id or "" for request_id, request_rows, _ in requests for _ in request_rows],
        "channels": sorted({row[0] for row in rows}), "priorities": sorted({row[2] for row in rows}),
        "statuses": statuses})


def _log_created(rows: list[tuple[str, str, str, str]], ids: list) -> None:
    if logger.isEnabledFor(logging.INFO) and rows:
        if len(rows) == 1:
            channel, category, priority, status = rows[0]
            logger.info("notification accepted", extra={"notification_id": str(ids[0]), "channel": channel,
                                                        "category": category, "priority": priority, "status": status})
        else:
            logger.info("%d notifications accepted", len(rows), extra={
                "count": len(rows), "channels": sorted({r[0] for r in rows}), "first_id": str(ids[0]),
                "last_id": str(ids[-1])})


# --- transitions -----------------------------------------------------------------------

def transition(rows: QuerySet, *, allowed: Iterable[str], to: str, detail: str, now: datetime | None = None,
               fields: dict[str, Any] | None = None, event_provider: bool = False) -> list[tuple]:
    """Move the notifications of ``rows`` that are in one of the ``allowed`` statuses to ``to``, with
    ``fields`` (values, or ``F("column")``) set too, in one statement that also inserts their events
    (``detail``; ``event_provider``: the row's provider), and count them after commit.

    The allowed statuses are checked on the updated row itself, so a concurrent change (a worker's
    claim, a cancel) and this one cannot both win. Returns the (id, channel, category, priority) moved.
    """
    now = now or timezone.now()
    qn = connection.ops.quote_name
    rows_sql, rows_params = rows.values("id").query.sql_with_params()
    assignments, params = ["status = %s", "updated_at = %s"], [to, now]
    for name, value in (fields or {}).items():
        column = Notification._meta.get_field(name).column
        if isinstance(value, F):
            assignments.append(f"{qn(column)} = {qn(Notification._meta.get_field(value.name).column)}")
        else:
            assignments.append(f"{qn(column)} = %s")
            params.append(Notification._meta.get_field(name).get_db_prep_save(value, connection))
    sql = (
        f"WITH moved AS ("
        f" UPDATE {TABLE} SET {', '.join(assignments)}"
        f" WHERE id IN ({rows_sql}) AND status = ANY(%s)"
        f" RETURNING id, channel, category, priority, provider"
        f"), events AS ("
        f" INSERT INTO {EVENTS_TABLE} (notification_id, status, at, detail, provider)"
        f" SELECT id, %s, %s, %s, CASE WHEN %s THEN provider ELSE '' END FROM moved"
        f") SELECT id, channel, category, priority FROM moved"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *rows_params, list(allowed), to, now, detail, event_provider])
        moved = cursor.fetchall()
    if moved:
        entered_after_commit([(channel, category, priority, to) for _, channel, category, priority in moved])
    return moved


def admit(rows: list[Notification], details: list[str], *, now: datetime) -> list[Notification]:
    """Insert new ``queued`` notifications made by the service itself (webhook deliveries: no acceptance
    policy) and their first events (``details``), in the caller's transaction; counted after commit."""
    for row in rows:
        row.status, row.queued_at = Status.QUEUED, now
    with transaction.atomic():
        Notification.objects.bulk_create(rows)
        NotificationEvent.objects.bulk_create(
            [NotificationEvent(notification=row, status=Status.QUEUED, at=now, detail=detail)
             for row, detail in zip(rows, details)])
        entered_after_commit([(n.channel, n.category, n.priority, Status.QUEUED) for n in rows])
    return rows


# --- the dispatcher's and the sweep's statements ---------------------------------------

def expire_overdue(*, limit: int = 5000) -> int:
    """Mark ``expired`` every pending notification whose ``expires_at`` has passed.

    Pending means ``scheduled`` (waiting for its time, a quiet-hours hold) or
    ``queued`` (waiting for a retry, or for a worker: its message may still sit
    in a RabbitMQ backlog, and the worker's claim then skips it). A row a worker
    has already claimed is ``sending`` and is left to the worker, which checks
    expiry again before sending. Returns how many expired.
    """
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH overdue AS (
                    SELECT id FROM {TABLE}
                    WHERE expires_at <= %s AND expires_at IS NOT NULL AND status IN (%s, %s)
                    LIMIT %s FOR UPDATE SKIP LOCKED
                )
                UPDATE {TABLE} AS n SET status = %s, next_attempt_at = NULL, updated_at = %s
                FROM overdue WHERE n.id = overdue.id
                RETURNING n.id
                """,
                [now, Status.SCHEDULED, Status.QUEUED, limit, Status.EXPIRED, now],
            )
            ids = [row[0] for row in cursor.fetchall()]
        NotificationEvent.objects.bulk_create([
            NotificationEvent(notification_id=i, status=Status.EXPIRED, at=now,
                              detail="expired before it could be sent")
            for i in ids
        ])
    return len(ids)


def release_due(*, limit: int, publish: Callable[[list], None]) -> tuple[int, int]:
    """One round of the dispatcher: take up to ``limit`` due rows (``FOR UPDATE SKIP LOCKED``: two
    dispatchers never take the same row), expire the overdue ones and move the others to ``queued``;
    after commit, ``publish`` gets their (id, priority) pairs. Returns (rows taken, rows released)."""
    now = timezone.now()
    due_at = clock.now()  # release times (schedules, quiet hours) follow the policy clock a test may move
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH due AS (
                    SELECT id, status AS old_status FROM {TABLE}
                    WHERE next_attempt_at <= %s AND status IN (%s, %s)
                    ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
                )
                UPDATE {TABLE} AS n SET
                    status = CASE WHEN n.expires_at IS NOT NULL AND n.expires_at <= %s THEN %s ELSE %s END,
                    next_attempt_at = NULL, queued_at = %s, updated_at = %s
                FROM due WHERE n.id = due.id
                RETURNING n.id, n.priority, n.status, due.old_status, n.channel, n.category
                """,
                [due_at, Status.SCHEDULED, Status.QUEUED, limit, now, Status.EXPIRED, Status.QUEUED, now, now],
            )
            rows = cursor.fetchall()
        if not rows:
            return 0, 0
        events = []
        released = []
        moved = []
        for notification_id, priority, status, old_status, channel, category in rows:
            if status == Status.EXPIRED or old_status == Status.SCHEDULED:
                moved.append((channel, category, priority, status))
            if status == Status.EXPIRED:
                events.append(NotificationEvent(notification_id=notification_id, status=Status.EXPIRED, at=now,
                                                detail="expired before it could be sent"))
                continue
            released.append((notification_id, priority))
            if old_status == Status.SCHEDULED:
                events.append(NotificationEvent(notification_id=notification_id, status=Status.QUEUED, at=now,
                                                detail="released by the dispatcher"))
        NotificationEvent.objects.bulk_create(events)
        if moved:
            entered_after_commit(moved)
        if released:
            transaction.on_commit(lambda: publish(released))
    return len(rows), len(released)


def recover_unconfirmed_publishes(*, limit: int = 1000) -> int:
    """Make due the rows of created groups whose publish was never confirmed; returns how many.

    Every create writes a ``PendingPublish`` entry with its rows, and the web process deletes it once
    the broker has confirmed their message. An entry still there ``NOTIFIER_PUBLISH_GRACE`` seconds
    after the commit means the process died in between (the message may or may not have reached
    RabbitMQ). The rows of its group (its millisecond's id range) that are still ``queued`` and
    unclaimed are marked due, and ``dispatch_due`` publishes them at once. Should the first message
    reach a worker as well, the claim takes each row once: either message's claim finds it already
    ``sending`` or ``sent``, or (made due and not yet released) skips it.
    """
    from notifier.ids import uuid7_before, uuid7_millisecond_range

    grace = settings.NOTIFIER_PUBLISH_GRACE
    if grace <= 0:
        return 0
    now = timezone.now()
    qn = connection.ops.quote_name
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Keys are uuid7 ids: those of groups created before the grace are the start of the primary key.
            cursor.execute(
                f"DELETE FROM {qn(PENDING_TABLE)} WHERE id IN ("
                f" SELECT id FROM {qn(PENDING_TABLE)} WHERE id < %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
                f") RETURNING id",
                [uuid7_before(time.time() - grace), limit],
            )
            ranges = sorted({uuid7_millisecond_range(key) for (key,) in cursor.fetchall()})
            recovered = []
            for low, high in ranges:  # one primary-key range each (`(status = ...) IS TRUE`: see claim())
                cursor.execute(
                    f"UPDATE {TABLE} SET next_attempt_at = %s, updated_at = %s"
                    f" WHERE id BETWEEN %s AND %s AND (status = %s) IS TRUE AND next_attempt_at IS NULL"
                    f" RETURNING id",
                    [now, now, low, high, Status.QUEUED],
                )
                recovered += [row[0] for row in cursor.fetchall()]
        NotificationEvent.objects.bulk_create(
            [NotificationEvent(notification_id=i, status=Status.QUEUED, at=now,
                               detail="republished: its publish was never confirmed") for i in recovered])
    if ranges:
        logger.warning("%d notifications of %d groups whose publish was never confirmed made due",
                       len(recovered), len(ranges))
    return len(recovered)


def reclaim_stuck(*, limit: int) -> tuple[list, list, dict]:
    """The sweep's statements, in the caller's transaction: ``sending`` rows whose claim timed out go back
    to ``queued`` and are made due (each time counted on the row); those at ``NOTIFIER_MAX_CLAIM_TIMEOUTS``
    stay ``sending``, locked, for the caller to fail; ``queued`` rows no worker claimed within
    ``NOTIFIER_REQUEUE_AFTER`` are made due. Returns (reclaimed ids, republished ids, {failing id: times}).
    """
    now = timezone.now()
    stale_claim = now - timedelta(seconds=settings.NOTIFIER_CLAIM_TIMEOUT)
    lost_publish = now - timedelta(seconds=settings.NOTIFIER_REQUEUE_AFTER)
    most = settings.NOTIFIER_MAX_CLAIM_TIMEOUTS
    with connection.cursor() as cursor:
        # Every timed-out claim is counted; the rows still under the limit go back to `queued`, the
        # others stay `sending` (locked until the commit) and are failed by the caller.
        cursor.execute(
            f"""
            WITH stuck AS (
                SELECT id FROM {TABLE} WHERE status = %s AND claimed_at < %s
                LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE {TABLE} AS n SET
                claim_timeouts = n.claim_timeouts + 1,
                status = CASE WHEN n.claim_timeouts + 1 >= %s THEN n.status ELSE %s END,
                claimed_at = CASE WHEN n.claim_timeouts + 1 >= %s THEN n.claimed_at END,
                next_attempt_at = CASE WHEN n.claim_timeouts + 1 >= %s THEN n.next_attempt_at ELSE %s END,
                updated_at = %s
            FROM stuck WHERE n.id = stuck.id
            RETURNING n.id, n.channel, n.category, n.priority, n.claim_timeouts
            """,
            [Status.SENDING, stale_claim, limit, most, Status.QUEUED, most, most, now, now],
        )
        stuck_rows = cursor.fetchall()
        reclaimed_rows = [row for row in stuck_rows if row[4] < most]
        abandoned = {row[0]: row[4] for row in stuck_rows if row[4] >= most}
        cursor.execute(
            f"""
            WITH lost AS (
                SELECT id FROM {TABLE}
                WHERE status = %s AND next_attempt_at IS NULL AND queued_at < %s
                LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE {TABLE} AS n SET next_attempt_at = %s, updated_at = %s
            FROM lost WHERE n.id = lost.id RETURNING n.id
            """,
            [Status.QUEUED, lost_publish, limit, now, now],
        )
        republished = [row[0] for row in cursor.fetchall()]
    NotificationEvent.objects.bulk_create(
        [NotificationEvent(notification_id=i, status=Status.QUEUED, at=now,
                           detail=f"put back: its worker did not finish (claim timed out {count} of {most} times)")
         for i, _, _, _, count in reclaimed_rows]
        + [NotificationEvent(notification_id=i, status=Status.QUEUED, at=now,
                             detail="republished: no worker had claimed it") for i in republished]
    )
    if reclaimed_rows:
        entered_after_commit([(channel, category, priority, Status.QUEUED)
                              for _, channel, category, priority, _ in reclaimed_rows])
    return [row[0] for row in reclaimed_rows], republished, abandoned
