"""The worker side: claim a chunk, send it, write the results back in bulk.

Also the two beat jobs: ``dispatch_due`` (release scheduled notifications and
retries whose time has come, and the rows of publishes never confirmed:
``recover_unconfirmed_publishes``) and ``sweep`` (recover rows whose worker died
or whose message was lost).
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from operator import attrgetter
from typing import Any, Iterable

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifier import clock, metrics, pii
from notifier.channels.base import Message
from notifier.channels.failover import Outcome, send_with_failover
from notifier.channels.registry import providers_for
from notifier.circuit import breaker
from notifier.interrupts import INTERRUPTS
from notifier.pacing import Pace
from notifier.pgarray import plain_array, text_array
from notifier.pii import mask_generic, scrub_text
from notifier.retry import Backoff, should_retry

from . import bulk, outbox, policy
from .categories import category_get
from .models import Notification, NotificationEvent, PendingPublish, Status
from .queues import publish_dead_letters
from .services import _publish_or_mark_due, enqueue_after_commit

logger = logging.getLogger(__name__)
# One line per delivery result (its own logger, so its level can be raised at high volume).
delivery_log = logging.getLogger("notifier.delivery")

TABLE = Notification._meta.db_table
EVENTS_TABLE = NotificationEvent._meta.db_table
PENDING_TABLE = PendingPublish._meta.db_table


@dataclass
class Result:
    """What happened to one claimed notification."""

    notification: Notification
    status: str
    provider: str = ""
    provider_message_id: str = ""
    error: str = ""
    detail: str = ""
    attempted: bool = True  # a provider was called (counts towards `attempts`)
    next_attempt_at: datetime | None = None
    dead_letter: bool = False


# --- claim -------------------------------------------------------------------------

# The columns a claim returns: what sending, the before-send checks, the results and the result
# hooks (apps.inbox, apps.webhooks) read. `RETURNING *` also loaded metadata (JSON), template,
# locale, group_key... for every row of every chunk; the columns left out are deferred fields on
# the instances (Django loads one on access; apps.webhooks loads metadata in bulk when it needs it).
CLAIM_COLUMNS = (
    "id", "channel", "recipient_id", "to", "category", "priority", "content", "attempts", "attempts_at_replay",
    "last_error", "provider", "provider_message_id", "expires_at", "created_at", "sent_at", "delivered_at",
)
# What every claimed row has, known without reading it back: set on the instances by the claim.
_CLAIM_CONSTANTS = ("status", "claimed_at", "updated_at", "next_attempt_at")
# Ids that can travel as one array literal (uuids as str() writes them), see claim().
_ID_LIST = re.compile(r"[0-9a-fA-F-]+(?:,[0-9a-fA-F-]+)*")
# PostgreSQL's jsonb text output has no surrounding whitespace: raw_decode (no whitespace regexes).
_json_decode = json.JSONDecoder().raw_decode


def claim(ids: Iterable[str], now: datetime) -> list[Notification]:
    """Move ``queued`` rows among ``ids`` to ``sending`` and return them.

    One conditional UPDATE: rows already claimed, sent, waiting for a retry
    time or cancelled are skipped, so a redelivered message never sends twice.
    The instances carry ``CLAIM_COLUMNS`` (and the values the claim set); the
    other fields are deferred.
    """
    ids = [str(i) for i in ids]
    if not ids:
        return []
    # One text parameter, `{id,id,...}`, which PostgreSQL parses as the array: psycopg adapts a
    # Python list element by element in Python. Anything unexpected goes as a list, as before.
    joined = ",".join(ids)
    id_param = "{" + joined + "}" if _ID_LIST.fullmatch(joined) else ids
    qn = connection.ops.quote_name
    # The claimed version's ctid comes back last: the result finds the row by it (record_results).
    returning = ", ".join("content::text AS content" if c == "content" else qn(c) for c in CLAIM_COLUMNS)
    returning += ", ctid::text AS claim_tid"
    # One statement (so one commit): the claim and its `sending` events.
    # `(status = ...) IS TRUE` means `status = ...` (status is NOT NULL) but cannot drive an index
    # scan: with stale statistics the planner otherwise walks notif_status_idx over every queued
    # row of a backlog (100+ ms a claim, measured) instead of looking the ids up by primary key.
    sql = (
        f"WITH claimed AS ("
        f" UPDATE {TABLE} SET status = %s, claimed_at = %s, updated_at = %s"
        f" WHERE id = ANY(%s::uuid[]) AND (status = %s) IS TRUE AND next_attempt_at IS NULL"
        f" RETURNING {returning}"
        f"), claim_events AS ("
        f" INSERT INTO {EVENTS_TABLE} (notification_id, status, at, detail, provider, attempt)"
        f" SELECT id, %s, %s, '', '', attempts + 1 FROM claimed"
        f") SELECT * FROM claimed"
    )
    params = [Status.SENDING, now, now, id_param, Status.QUEUED, Status.SENDING, now]
    constants = dict(zip(_CLAIM_CONSTANTS, (Status.SENDING, now, now, None)))
    if connection.in_atomic_block:  # e.g. inside a test's transaction: Django's cursor, text rows
        rows = list(Notification.objects.raw(sql, params))  # claim_tid: an extra attribute of each
        for n in rows:
            n.__dict__.update(constants)
        return _claimed(rows)
    # Binary rows: psycopg's C loaders parse uuids and times (Django's text timestamptz loader is
    # Python and was the largest cost of a claim). `content` comes as text and is decoded here:
    # psycopg's jsonb loader goes through json.loads on bytes (encoding detection, a decode).
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # Django's own cursors are client-side
        cursor.execute(sql, params, binary=True)
        rows = cursor.fetchall()
    return _claimed(_instances(rows, constants))


def _instances(rows: list[tuple], constants: dict[str, Any]) -> list[Notification]:
    """Saved ``Notification`` instances from claimed rows (``CLAIM_COLUMNS`` order, then the claimed
    version's ctid as ``claim_tid``), ``content`` decoded."""
    instances = bulk.instances_from_rows(Notification, CLAIM_COLUMNS, [row[:-1] for row in rows],
                                         constants=constants)
    decode = _json_decode
    for n, row in zip(instances, rows):
        n.claim_tid = row[-1]
        if n.content is not None:
            n.content = decode(n.content)[0]
    return instances


# Metric labels, read in C (a chunk's rows mostly share them: counted first, then one increment each).
_labels = attrgetter("channel", "category", "priority")
_result_labels = attrgetter("notification.channel", "notification.category", "notification.priority", "status")
_sent_labels = attrgetter("notification.priority", "notification.created_at")


def _claimed(rows: list[Notification]) -> list[Notification]:
    if rows:
        metrics.notifications_entered(
            {(*labels, Status.SENDING): count for labels, count in Counter(map(_labels, rows)).items()})
    return rows


# --- build messages -------------------------------------------------------------

def _targets(notification: Notification, devices: dict[int, list[Any]]) -> list[tuple[str, str, int | None]]:
    """(address, platform, device id) triples to send this notification to."""
    recipient = notification.recipient
    channel = notification.channel
    if channel == "push":
        tokens = notification.content.get("device_tokens") or []
        if tokens:
            return [(t, "", None) for t in tokens]
        return [(d.token, d.platform, d.id) for d in devices.get(notification.recipient_id, [])]
    if notification.to:
        return [(notification.to, "", None)]
    if recipient is None:
        return []
    if channel == "email":
        return [(recipient.email, "", None)] if recipient.email else []
    if channel == "sms":
        return [(recipient.phone, "", None)] if recipient.phone else []
    return [(recipient.external_id, "", None)]


def _message(notification: Notification, address: str, platform: str, device_id: int | None = None, *,
             allow_unsubscribe: bool | None = None) -> Message:
    """One provider call's message. ``allow_unsubscribe`` (the category's opt-out), when the caller
    already knows it: deliver_chunk looks each category up once per chunk, not once per message."""
    content = notification.content or {}
    if allow_unsubscribe is None:
        category = category_get(notification.category)
        allow_unsubscribe = bool(category and category.allow_opt_out)
    return Message(
        notification_id=str(notification.id), channel=notification.channel, to=address,
        category=notification.category, priority=notification.priority,
        subject=content.get("subject", ""), body=content.get("body", ""), html=content.get("html", ""),
        title=content.get("title", ""), data=content.get("data") or {}, platform=platform,
        allow_unsubscribe=allow_unsubscribe, device_id=device_id,
    )


def _allow_unsubscribe(slug: str) -> bool:
    category = category_get(slug)
    return bool(category and category.allow_opt_out)


def _load_devices(rows: list[Notification]) -> dict[int, list[Any]]:
    from apps.recipients.models import Device

    recipient_ids = {n.recipient_id for n in rows if n.channel == "push" and n.recipient_id}
    devices: dict[int, list[Any]] = defaultdict(list)
    if recipient_ids:
        for device in Device.objects.filter(recipient_id__in=recipient_ids, active=True).order_by("id"):
            devices[device.recipient_id].append(device)
    return devices


# --- deliver ---------------------------------------------------------------------

def _backoff() -> Backoff:
    return Backoff(base=settings.NOTIFIER_RETRY_BACKOFF_BASE, cap=settings.NOTIFIER_RETRY_BACKOFF_MAX)


def _describe(messages: list[Message], outcomes: list[Outcome]) -> str:
    """The path of every message; a push fanned out to several devices names each one."""
    if len(messages) == 1 and messages[0].device_id is None:
        return outcomes[0].describe()
    parts = []
    for message, outcome in zip(messages, outcomes):
        label = f"device {message.device_id}" if message.device_id is not None else f"token {mask_generic(message.to)}"
        parts.append(f"{label} ({message.platform or 'token'}): {outcome.describe()}")
    return " | ".join(parts)


def _result_from_outcomes(notification: Notification, outcomes: list[Outcome], now: datetime,
                          messages: list[Message] | None = None) -> Result:
    if len(outcomes) == 1 and outcomes[0].error is None and (not messages or messages[0].device_id is None):
        # The common case, one message accepted: what the general path below gives, without its lists.
        outcome = outcomes[0]
        return Result(notification, Status.SENT, provider=outcome.provider,
                      provider_message_id=outcome.message_id or "", detail=outcome.describe())
    sent = [o for o in outcomes if o.ok]
    detail = _describe(messages, outcomes) if messages else " | ".join(o.describe() for o in outcomes)
    if sent:
        return Result(notification, Status.SENT, provider=sent[0].provider,
                      provider_message_id=sent[0].message_id or "", detail=detail)
    transient = [o for o in outcomes if o.error and not o.error.permanent]
    failure = (transient or outcomes)[0]
    error_text = str(failure.error)
    if not transient:
        return Result(notification, Status.FAILED, provider=failure.provider, error=error_text, detail=detail)
    if all(o.circuit_wait for o in transient):
        # Every provider's circuit is open: wait until one half-opens, without spending a retry.
        until = max(now, datetime.fromtimestamp(min(o.retry_at for o in transient), tz=dt_timezone.utc))
        return Result(notification, Status.QUEUED, provider=failure.provider, error=error_text,
                      detail=f"waiting for an open circuit until {until.isoformat(timespec='seconds')}: {detail}",
                      next_attempt_at=until, attempted=False)
    transient = [o for o in transient if o.attempted]
    failure = transient[0]
    error_text = str(failure.error)
    attempts_in_budget = notification.attempts + 1 - notification.attempts_at_replay
    if should_retry(attempts_in_budget):
        delay = _backoff().delay(attempts_in_budget, retry_after=failure.error.retry_after)
        at = now + timedelta(seconds=delay)
        return Result(notification, Status.QUEUED, provider=failure.provider, error=error_text,
                      detail=f"retry {attempts_in_budget} in {delay:.2f}s after: {detail}", next_attempt_at=at)
    return Result(notification, Status.FAILED, provider=failure.provider, error=error_text,
                  detail=f"retries exhausted: {detail}", dead_letter=True)


def deliver_chunk(ids: Iterable[str], *, deadline: float | None = None) -> dict[str, int]:
    """Deliver the notifications among ``ids`` that are still waiting. Returns counts by status.

    ``deadline`` (``time.monotonic()`` seconds; by default ``chunk_deadline()`` from now): after it,
    what has not been handed to a provider is put back and republished in smaller chunks (``_send``).
    """
    started = time.monotonic()
    if deadline is None:
        deadline = started + chunk_deadline()
    now = timezone.now()
    rows = claim(ids, now)
    if not rows:
        return {}
    recipients = {}
    recipient_ids = {n.recipient_id for n in rows if n.recipient_id}
    if recipient_ids:
        from apps.recipients.models import Recipient

        recipients = Recipient.objects.in_bulk(recipient_ids)
    # Every row's `recipient` cached, None included: each later read (the before-send checks,
    # targets, result hooks) is then a cache hit, not the descriptor's lookup of the key.
    remember = Notification.recipient.field.set_cached_value
    for n in rows:
        if n.recipient_id is None:
            remember(n, None)
        elif (recipient := recipients.get(n.recipient_id)) is not None:
            remember(n, recipient)
        else:
            n.recipient = None  # deleted since: as the descriptor sets it (recipient_id None too)
    devices = _load_devices(rows)

    results: list[Result] = []
    verdicts = policy.before_send([n for n in rows if not (n.expires_at and n.expires_at <= now)], now)
    sendable: dict[str, list[tuple[Notification, list[Message]]]] = defaultdict(list)
    allow_unsubscribe: dict[str, bool] = {}  # by category, looked up once per chunk
    for n in rows:
        if n.expires_at and n.expires_at <= now:
            results.append(Result(n, Status.EXPIRED, detail="expired before sending", attempted=False))
            continue
        verdict = verdicts.get(n.id) if verdicts else None
        if verdict is not None:
            results.append(Result(n, verdict.status, detail=verdict.detail, attempted=False,
                                  next_attempt_at=verdict.hold_until))
            continue
        targets = _targets(n, devices)
        if not targets:
            results.append(Result(n, Status.FAILED, error="no address to send to", detail="no address to send to",
                                  attempted=False))
            continue
        opt_out = allow_unsubscribe.get(n.category)
        if opt_out is None:
            opt_out = allow_unsubscribe[n.category] = _allow_unsubscribe(n.category)
        sendable[n.channel].append((n, [_message(n, address, platform, device_id, allow_unsubscribe=opt_out)
                                        for address, platform, device_id in targets]))

    return _send(rows, sendable, results, now, deadline, allowed=deadline - started)


# The process's pace of each channel (seconds per message), which sizes provider calls.
pace = Pace()


def chunk_deadline(*, soft: float | None = None, hard: float | None = None) -> float:
    """Seconds a worker may spend handing one chunk's notifications to providers:
    ``NOTIFIER_CHUNK_DEADLINE``, and at most half of the task's soft and hard time limits (those its
    message carries, else the settings') and of ``NOTIFIER_CLAIM_TIMEOUT`` (the sweep must never take
    back rows whose worker is still at work)."""
    if soft is None and hard is None:
        soft = getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", None)
        hard = getattr(settings, "CELERY_TASK_TIME_LIMIT", None)
    limits = [settings.NOTIFIER_CHUNK_DEADLINE]
    for limit in (soft, hard, settings.NOTIFIER_CLAIM_TIMEOUT):
        if limit:
            limits.append(limit / 2)
    return min(limits)


def _send(rows: list[Notification], sendable: dict[str, list[tuple[Notification, list[Message]]]],
          results: list[Result], claimed_at: datetime, deadline: float, *, allowed: float) -> dict[str, int]:
    """Hand the claimed notifications to their providers in calls paced to the deadline, recording the
    results as they come; at the deadline, put back what was not handed over and republish it split.

    Each provider call is sized (``notifier.pacing``) to last about a tenth of the chunk's time
    (``allowed`` seconds, from the task's start to ``deadline``).
    Results are written (one ``record_results`` statement) whenever that long has passed since the
    last write, and at the end: a provider that answers at once gets the whole chunk in one call and
    one write, as before; a slow relay gets its results written call by call, so a worker killed
    mid-chunk loses at most what its last call sent. Once the deadline has passed, the notifications
    not yet handed to a provider go back to ``queued`` and are republished in two chunks (at least
    one call is made per chunk, so every chunk makes progress). A Celery soft time limit
    (``SoftTimeLimitExceeded``) is handled alike and raised again; the notifications of the call it
    interrupted stay ``sending``: the sweep puts them back (and counts it, see ``sweep``).
    """
    budget = allowed / 10
    counts: dict[str, int] = defaultdict(int)
    sent_items: list = []
    written_at = time.monotonic()
    # What is left: (channel, items) pairs; of the first, the items from `handed` on were never given
    # to a provider (`handed` moves before each call: what a provider may have had is never put back).
    queue = list(sendable.items())
    handed = 0

    def write() -> None:
        nonlocal results, sent_items, written_at
        batch, after_send, results, sent_items = results, sent_items, [], []
        written_at = time.monotonic()
        policy.after_send(after_send)
        record_results(batch)
        for r in batch:
            counts[r.status] += 1

    def not_handed_over() -> list[Notification]:
        rest = [n for n, _ in queue[0][1][handed:]] if queue else []
        return rest + [n for _, items in queue[1:] for n, _ in items]

    try:
        made_a_call = False
        while queue:
            channel, items = queue[0]
            if handed >= len(items):
                queue.pop(0)
                handed = 0
                continue
            clock = time.monotonic()
            if made_a_call and clock >= deadline:
                break
            providers = providers_for(channel)
            size = pace.size(channel, len(items) - handed, min(budget, deadline - clock),
                             floor=providers[0].parallelism)
            batch = items[handed:handed + size]
            handed += size
            flat = [m for _, messages in batch for m in messages]
            outcomes = send_with_failover(providers, flat, breaker=breaker())
            pace.observe(channel, len(batch), time.monotonic() - clock)
            made_a_call = True
            metrics.attempts_made(channel, ((o.path, o.ok, bool(o.error and o.error.permanent)) for o in outcomes))
            sent_at = timezone.now()
            if len(flat) == len(batch):  # one message each (no push fan-out): pair them directly
                for (n, messages), outcome in zip(batch, outcomes):
                    results.append(_result_from_outcomes(n, [outcome], sent_at, messages))
                    sent_items.append((n, messages[0], outcome))
            else:
                offset = 0
                for n, messages in batch:
                    mine = outcomes[offset:offset + len(messages)]
                    offset += len(messages)
                    results.append(_result_from_outcomes(n, mine, sent_at, messages))
                    sent_items.extend((n, m, o) for m, o in zip(messages, mine))
            if time.monotonic() - written_at >= budget and (handed < len(items) or len(queue) > 1):
                write()
    except INTERRUPTS:
        # Celery's soft time limit: keep what is known, give back what was never handed over.
        rest = not_handed_over()
        try:
            write()
            with transaction.atomic():
                _put_back(rest, claimed_at, "put back: the task's soft time limit struck before it was sent")
        except Exception:  # noqa: BLE001 - the rows stay `sending`; the sweep puts them back
            logger.exception("could not record a timed-out chunk; the sweep will put its rows back")
        raise
    write()
    rest = not_handed_over()
    if rest:
        with transaction.atomic():  # the rows and their events, then (on commit) the publish
            counts[Status.QUEUED] += _put_back(
                rest, claimed_at, f"put back: the chunk's deadline ({allowed:.3g}s) passed before it was sent; "
                                  f"republished in smaller chunks")
        logger.warning("chunk deadline: %d of %d notifications put back and republished in two chunks",
                       len(rest), len(rows))
    return dict(counts)


def _put_back(notifications: list[Notification], claimed_at: datetime, detail: str) -> int:
    """Move claimed rows that were never handed to a provider back to ``queued`` (with an event) and,
    after commit, republish them in two chunks. Only rows still held by this claim are moved."""
    if not notifications:
        return 0
    now = timezone.now()
    # `(status = ...) IS TRUE`: the rows looked up by primary key, never through notif_status_idx.
    sql = (
        f"WITH back AS ("
        f" UPDATE {TABLE} SET status = %s, claimed_at = NULL, queued_at = %s, updated_at = %s"
        f" WHERE id = ANY(%s::uuid[]) AND (status = %s) IS TRUE AND claimed_at = %s"
        f" RETURNING id, priority, channel, category"
        f"), events AS ("
        f" INSERT INTO {EVENTS_TABLE} (notification_id, status, at, detail, provider)"
        f" SELECT id, %s, %s, %s, '' FROM back"
        f") SELECT id, priority, channel, category FROM back"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Status.QUEUED, now, now, plain_array([n.id.hex for n in notifications]),
                             Status.SENDING, claimed_at, Status.QUEUED, now, detail])
        rows = cursor.fetchall()
    if rows:
        items = [(i, priority) for i, priority, _, _ in rows]
        entered = [(channel, category, priority, Status.QUEUED) for _, priority, channel, category in rows]
        half = -(-len(items) // 2)
        transaction.on_commit(lambda: metrics.notifications_entered(entered))
        transaction.on_commit(lambda: _publish_or_mark_due(items, chunk_size=half))
    return len(rows)


def record_results(results: list[Result]) -> None:
    """Write every result and its event with one statement; dead-letter after commit, and run the result
    hooks that have work in them from the outbox (``outbox.py``: one row per such hook, written in the
    same transaction, run after the commit).

    The results travel as one array parameter per column, each the text of the
    array (``notifier.pgarray``: joined in one pass, parsed by PostgreSQL; a
    JSON document of one object per result cost twice as much to build, and
    psycopg adapts Python lists element by element), and one data-modifying CTE
    updates the rows and inserts the events.

    Each row is found by the ctid of the version its claim wrote (a TID scan: one
    heap page each), and is still checked to be that notification and ``sending``.
    Found by id instead, the planner walked ``notif_status_idx`` over every entry
    ever made for ``sending`` (dead ones too, until a vacuum): 270,000 entries and
    10,000 heap pages for a 1,000-row result half a minute into the batch
    benchmark, most of PostgreSQL's CPU. A row whose version has changed since its
    claim (the sweep put it back, a vacuum moved it) is looked up by id afterwards.
    """
    if not results:
        return
    now = timezone.now()
    columns = [
        plain_array([r.notification.id.hex for r in results]),  # 32 hex digits: PostgreSQL reads them as uuid
        text_array([r.status for r in results]),
        text_array([r.provider for r in results]),
        text_array([r.provider_message_id for r in results]),
        text_array([r.error for r in results]),
        plain_array([r.next_attempt_at.isoformat() if r.next_attempt_at else None for r in results]),
        plain_array([1 if r.attempted else 0 for r in results]),
        text_array([r.detail or r.error or "" for r in results]),
        plain_array([(r.notification.attempts + 1) if r.attempted else None for r in results]),
    ]
    tids = [getattr(r.notification, "claim_tid", None) for r in results]
    # What the result hooks (inbox, webhook events) will need: usually nothing (no in-app result, no
    # endpoint listening), and then no outbox row is written and nothing runs after the commit.
    hooks = policy.prepare_results(results, now)
    with transaction.atomic():
        with connection.cursor() as cursor:
            if None in tids:
                updated = _write_results(cursor, columns, now, by_tid=None)
            else:
                updated = _write_results(cursor, columns, now, by_tid=text_array(tids))
                if updated < len(results):  # versions changed since the claim: those rows by id
                    _write_results(cursor, columns, now, by_tid=None, events=False)
        letters = [
            {
                "id": str(r.notification.id), "channel": r.notification.channel,
                "priority": r.notification.priority, "category": r.notification.category,
                "attempts": r.notification.attempts + (1 if r.attempted else 0),
                "last_error": scrub_text(r.error),  # no PII on the broker
                "failed_at": now.isoformat(),
            }
            for r in results if r.dead_letter
        ]
        if letters:
            transaction.on_commit(lambda: _dead_letter(letters))
        transaction.on_commit(lambda: _observe_results(results, now))
        if hooks:
            # The hooks run after the commit, each in its own transaction: one that fails is retried from
            # its outbox row and never rolls back these results (which would send them again).
            outbox_ids = outbox.write(hooks, now)
            transaction.on_commit(lambda: outbox.run(outbox_ids))


_SET_RESULT = """
    status = v.s,
    attempts = n.attempts + v.n,
    provider = CASE WHEN v.p = '' THEN n.provider ELSE v.p END,
    provider_message_id = CASE WHEN v.m = '' THEN n.provider_message_id ELSE v.m END,
    last_error = CASE WHEN v.s = %s THEN n.last_error ELSE v.e END,
    next_attempt_at = v.t,
    sent_at = CASE WHEN v.s = %s THEN %s ELSE n.sent_at END,
    claimed_at = NULL,
    updated_at = %s
"""


_TID_ONLY_SETTINGS = ("enable_seqscan", "enable_indexscan", "enable_bitmapscan")
_TID_ONLY = " ".join(f"SET LOCAL {name} = off;" for name in _TID_ONLY_SETTINGS)
_TID_ONLY_RESET = " ".join(f"SET LOCAL {name} TO DEFAULT;" for name in _TID_ONLY_SETTINGS)


def _write_results(cursor, columns: list[str], now: datetime, *, by_tid: str | None, events: bool = True) -> int:
    """One statement: the results' rows still ``sending`` updated (found by the claimed versions' ctids,
    or by id), and with ``events`` every result's event inserted. Returns how many rows it updated."""
    params = list(columns)
    if by_tid is not None:
        unnest = "unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], " \
                 "%s::int[], %s::text[], %s::int[], %s::tid[]) AS v(i, s, p, m, e, t, n, d, a, c)"
        match = "n.ctid = v.c AND n.id = v.i"
        params.append(by_tid)
    else:
        unnest = "unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], " \
                 "%s::int[], %s::text[], %s::int[]) AS v(i, s, p, m, e, t, n, d, a)"
        # `= ANY(ids)`: the rows looked up by primary key (a join alone can read the whole table).
        match = "n.id = ANY(%s::uuid[]) AND n.id = v.i"
    params += [Status.SENT, Status.SENT, now, now]
    if by_tid is None:
        params.append(columns[0])
    params.append(Status.SENDING)
    # `(n.status = ...) IS TRUE`: never a scan of notif_status_idx (see record_results).
    sql = (f"WITH v AS (SELECT * FROM {unnest}), "
           f"updated AS (UPDATE {TABLE} AS n SET {_SET_RESULT} FROM v"
           f" WHERE {match} AND (n.status = %s) IS TRUE RETURNING 1)")
    if events:
        sql += (f", logged AS (INSERT INTO {EVENTS_TABLE} (notification_id, status, at, detail, provider, attempt)"
                f" SELECT v.i, v.s, %s, v.d, v.p, v.a FROM v)")
        params.append(now)
    if by_tid is None:
        cursor.execute(sql + " SELECT count(*) FROM updated", params)
        return cursor.fetchone()[0]
    # Only the TID scan (in the same round trip; the settings are put back after the statement).
    # Wherever the statistics promise few `sending` rows, as they do where the table was analyzed
    # while every row in it was `sent` (a new deployment, the benchmark after its clean-up, a table
    # autovacuum analyzed between bursts), the planner read the table sequentially (or by a full
    # index scan) and joined each row it found against all the results: 999,000 join-filter
    # rejections for 1,000 results, 283 ms of backend CPU where the claim of the same rows took
    # 26 ms. With the other scans off it looks each result up by its ctid (22 ms in all);
    # tests/app/test_claim.py checks the plan.
    cursor.execute(f"{_TID_ONLY} {sql} SELECT count(*) FROM updated; {_TID_ONLY_RESET}", params)
    for _ in _TID_ONLY_SETTINGS:
        cursor.nextset()
    return cursor.fetchone()[0]


def _address(n: Notification) -> str:
    if n.to:
        return n.to
    # Only a recipient already loaded (deliver_chunk loads them in bulk): no query per row.
    recipient = n.recipient if n.recipient_id and Notification.recipient.is_cached(n) else None
    if recipient is None:
        return ""
    if n.channel == "email":
        return recipient.email or ""
    if n.channel == "sms":
        return recipient.phone or ""
    return recipient.external_id


def _observe_results(results: list[Result], now: datetime) -> None:
    """Metrics (by counts) and one structured log line per result, once the results are committed."""
    metrics.notifications_entered(Counter(map(_result_labels, results)))
    sent = Counter(_sent_labels(r) for r in results if r.status == Status.SENT)
    metrics.latency_observed({(priority, created_at, now): count for (priority, created_at), count in sent.items()})
    every = delivery_log.isEnabledFor(logging.INFO)  # off by default (DELIVERY_LOG_LEVEL): failures only
    if not every and not delivery_log.isEnabledFor(logging.WARNING):
        return
    for r in results:
        if r.status == Status.FAILED:
            level = logging.WARNING
        elif every:
            level = logging.INFO
        else:
            continue
        n = r.notification
        delivery_log.log(level, "notification %s", r.status, extra={
            "notification_id": str(n.id), "channel": n.channel, "priority": n.priority, "category": n.category,
            "status": r.status, "attempt": n.attempts + 1 if r.attempted else n.attempts,
            "provider": r.provider, "provider_message_id": r.provider_message_id,
            "to": pii.mask_address(n.channel, _address(n)), "error": r.error,
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
        })


def _dead_letter(letters: list[dict]) -> None:
    try:
        publish_dead_letters(letters)
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001 - the rows are `failed` in PostgreSQL; `replay --status failed` finds them
        logger.exception("could not publish %d dead letters", len(letters))


# --- beat jobs -----------------------------------------------------------------------

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


def dispatch_due(*, limit: int = 5000, max_rounds: int = 20) -> int:
    """Queue scheduled notifications and retries whose time has come; expire overdue ones.

    Claims due rows with ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers
    never take the same row. Returns how many were queued.
    """
    expire_overdue(limit=limit)
    recover_unconfirmed_publishes()
    from apps.workflows.hooks import workflows_release_due  # workflows: digests and fallback steps

    workflows_release_due()
    total = 0
    for _ in range(max_rounds):
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
                return total
            events = []
            publish = []
            entered = []
            for notification_id, priority, status, old_status, channel, category in rows:
                if status == Status.EXPIRED or old_status == Status.SCHEDULED:
                    entered.append((channel, category, priority, status))
                if status == Status.EXPIRED:
                    events.append(NotificationEvent(notification_id=notification_id, status=Status.EXPIRED, at=now,
                                                    detail="expired before it could be sent"))
                    continue
                publish.append((notification_id, priority))
                if old_status == Status.SCHEDULED:
                    events.append(NotificationEvent(notification_id=notification_id, status=Status.QUEUED, at=now,
                                                    detail="released by the dispatcher"))
            NotificationEvent.objects.bulk_create(events)
            if entered:
                transaction.on_commit(lambda entered=entered: metrics.notifications_entered(entered))
            if publish:
                transaction.on_commit(lambda items=publish: enqueue_after_commit(items))
        total += len(publish)
        if len(rows) < limit:
            break
    return total


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


def sweep(*, limit: int = 10000) -> dict[str, int]:
    """Recover stuck work: ``sending`` rows whose worker died, ``queued`` rows whose message was lost.

    Both are made due again; the dispatcher publishes them. Each time a row's claim times out it
    counts on the row (``claim_timeouts``); at ``NOTIFIER_MAX_CLAIM_TIMEOUTS`` the row is ``failed``
    ("delivery never completed") and dead-lettered instead: a notification whose worker dies or
    hangs every time (a poison row, a relay that never answers) is not taken back for ever.
    Attempts do not change: whether its provider was called is not known.
    """
    now = timezone.now()
    stale_claim = now - timedelta(seconds=settings.NOTIFIER_CLAIM_TIMEOUT)
    lost_publish = now - timedelta(seconds=settings.NOTIFIER_REQUEUE_AFTER)
    most = settings.NOTIFIER_MAX_CLAIM_TIMEOUTS
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Every timed-out claim is counted; the rows still under the limit go back to `queued`, the
            # others stay `sending` (locked until the commit) and are failed below.
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
            reclaimed = [row[0] for row in reclaimed_rows]
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
            entered = [(channel, category, priority, Status.QUEUED)
                       for _, channel, category, priority, _ in reclaimed_rows]
            transaction.on_commit(lambda: metrics.notifications_entered(entered))
        if abandoned:
            _abandon(abandoned)
    if reclaimed or republished or abandoned:
        logger.warning("sweep: %d reclaimed from dead workers, %d republished, %d failed after %d claim timeouts",
                       len(reclaimed), len(republished), len(abandoned), most)
        dispatch_due()
    return {"reclaimed": len(reclaimed), "republished": len(republished), "failed": len(abandoned)}


def _abandon(claims: dict) -> None:
    """Fail rows whose claim timed out too often (``claims``: id -> times; the rows are still
    ``sending``, locked by the caller's transaction) as a worker fails them: events, result hooks,
    metrics and dead letters."""
    results = []
    for n in Notification.objects.filter(id__in=list(claims)).order_by("id"):
        error = f"delivery never completed (claimed {claims[n.id]} times)"
        results.append(Result(n, Status.FAILED, error=error, detail=f"{error}: its worker died or hung each time",
                              attempted=False, dead_letter=True))
    record_results(results)
