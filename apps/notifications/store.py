"""Raw PostgreSQL of the hot paths: insert new notifications, claim a chunk, write its results back,
put back what a chunk could not send. Each is one statement (the rows and their events together); the
callers own the transactions, counters and publishing (``lifecycle``, ``outbox``)."""
from __future__ import annotations

import json
import re
from contextlib import nullcontext
from functools import lru_cache
from datetime import datetime
from typing import Any, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.apikeys.models import default_project_id
from notifier.ids import uuid7_many
from notifier.pgarray import plain_array, text_array

from . import bulk, policy
from .models import Notification, NotificationEvent, PendingPublish, Status
from .specs import Created, NotificationSpec, Result, initial_state

TABLE = Notification._meta.db_table
EVENTS_TABLE = NotificationEvent._meta.db_table
PENDING_TABLE = PendingPublish._meta.db_table


# --- insert ----------------------------------------------------------------------------

# The fields a new notification sets (the rest take their defaults), in row_builder's order.
INSERT_FIELDS = (
    "id", "channel", "recipient_id", "to", "category", "priority", "template", "locale", "content", "status",
    "scheduled_for", "expires_at", "next_attempt_at", "queued_at", "metadata", "group_key", "api_key_id",
    "project_id", "created_at", "updated_at", "broadcast_id",
)


def insert_notifications(*, specs: list[NotificationSpec], api_key_ids: list[Any], now: datetime,
                         lean: bool = False, pending: list | None = None) -> list[Notification] | list[Created]:
    """Insert notifications whose acceptance policy has run, and their first events; commit (or join
    the surrounding transaction). No metrics, no publishing: the caller does those after commit.

    ``lean``: return ``Created`` records (the id as text) instead of model instances.
    ``pending``: when some rows are queued, a ``PendingPublish`` entry is inserted with them and its
    key appended to this list; the caller hands it to ``outbox.publish`` with their publish,
    which deletes the entry once the broker has confirmed it (unless ``NOTIFIER_PUBLISH_GRACE`` is 0)."""
    build = bulk.row_builder(Notification, INSERT_FIELDS)
    rows: list[list] = []
    event_rows: list[tuple] = []
    default_project = None
    for spec, api_key_id, notification_id in zip(specs, api_key_ids, uuid7_many(len(specs))):
        status, next_attempt_at, detail = initial_state(spec, now)
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
            project_id, now, now, spec.broadcast_id,
        ))
        event_rows.append((notification_id, status, now, detail or "", "", None))
    pending_key = None  # the PendingPublish key: the first queued row (its millisecond is the group's)
    if pending is not None and settings.NOTIFIER_PUBLISH_GRACE > 0:
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
        if workflows:  # workflows: digest members and fallback steps commit with their notifications
            policy.after_insert(specs=specs, ids=[event[0] for event in event_rows],
                                statuses=[event[1] for event in event_rows], api_key_ids=api_key_ids, now=now)
    if pending_key is not None:
        pending.append(pending_key)
    return notifications


def insert_for_recipients(*, spec: NotificationSpec, recipient_ids: str, count: int, api_key_id: Any,
                          now: datetime, pending: list | None = None) -> tuple[list[str], str]:
    """Insert ``count`` notifications that are ``spec`` but for their recipient, one for each of
    ``recipient_ids`` (the text of a PostgreSQL bigint array, as a query returned it), and their first
    events, in ONE statement of the caller's transaction: no spec, row or instance per notification.
    The acceptance policy is the caller's: it has established that the policy lets every one of them
    through unchanged (apps/broadcasts/expansion.py). Returns their ids (text) and their status.

    The columns are the ones ``insert_notifications`` writes (``row_builder``: every other field's
    default), each the same parameter for every row but ``id`` and ``recipient_id``."""
    plan = bulk.insert_plan(Notification)
    status, next_attempt_at, detail = initial_state(spec, now)
    project_id = spec.project_id if spec.project_id is not None else default_project_id()
    row = bulk.row_builder(Notification, INSERT_FIELDS)(
        None, spec.channel, None, spec.to, spec.category, spec.priority, spec.template, spec.locale, spec.content,
        status, spec.scheduled_for, spec.expires_at, next_attempt_at, now if status == Status.QUEUED else None,
        spec.metadata, spec.group_key, api_key_id, project_id, now, now, spec.broadcast_id)
    bulk.json_as_text([row], Notification)
    ids = [str(i) for i in uuid7_many(count)]
    id_index, recipient_index = plan.columns.index("id"), plan.columns.index("recipient_id")
    qn = connection.ops.quote_name
    values, params = [], [f"{{{','.join(ids)}}}", recipient_ids]
    for index, sql_type in enumerate(_column_types()):
        if index == id_index:
            values.append("v.i")
        elif index == recipient_index:
            values.append("v.r")
        else:
            values.append(f"%s::{sql_type}")
            params.append(row[index])
    pending_key = ids[0] if pending is not None and status == Status.QUEUED and settings.NOTIFIER_PUBLISH_GRACE > 0 \
        else None
    params += [status, now, detail or ""]
    entry = ""
    if pending_key is not None:
        entry = f", pending AS (INSERT INTO {qn(PENDING_TABLE)} (id) VALUES (%s::uuid))"
        params.append(pending_key)
    sql = (f"WITH v AS MATERIALIZED (SELECT * FROM unnest(%s::uuid[], %s::bigint[]) AS v(i, r)), "
           f"inserted AS (INSERT INTO {qn(TABLE)} ({', '.join(map(qn, plan.columns))}) SELECT {', '.join(values)} "
           f"FROM v), logged AS (INSERT INTO {qn(EVENTS_TABLE)} ({', '.join(map(qn, bulk.EVENT_COLUMNS))}) "
           f"SELECT v.i, %s, %s::timestamptz, %s, '', NULL FROM v){entry} SELECT count(*) FROM v")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()[0]
    if inserted != count:
        raise ValueError(f"{count} recipients expected, {inserted} given")
    if pending_key is not None:
        pending.append(pending_key)
    return ids, status


@lru_cache(maxsize=None)
def _column_types() -> tuple[str, ...]:
    """Each notification column's SQL type (``varchar``, ``jsonb``, ...), in column order: the casts of
    ``insert_for_recipients``' parameters. No length (an explicit cast to ``varchar(16)`` would cut a longer
    value short; the column's own assignment refuses it, as COPY does)."""
    return tuple((f.target_field if f.is_relation else f).db_type(connection).split("(")[0]
                 for f in Notification._meta.concrete_fields)


# --- claim -------------------------------------------------------------------------------

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
        return rows
    # Binary rows: psycopg's C loaders parse uuids and times (Django's text timestamptz loader is
    # Python and was the largest cost of a claim). `content` comes as text and is decoded here:
    # psycopg's jsonb loader goes through json.loads on bytes (encoding detection, a decode).
    with bulk.driver_cursor() as cursor:  # Django's own cursors are client-side
        cursor.execute(sql, params, binary=True)
        rows = cursor.fetchall()
    return _instances(rows, constants)


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


# --- results -----------------------------------------------------------------------------

def write_results(results: list[Result], now: datetime) -> None:
    """Write every result and its event with one statement, in the caller's transaction.

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
    with connection.cursor() as cursor:
        if None in tids:
            _write_results(cursor, columns, now, by_tid=None)
        else:
            updated = _write_results(cursor, columns, now, by_tid=text_array(tids))
            if updated < len(results):  # versions changed since the claim: those rows by id
                _write_results(cursor, columns, now, by_tid=None, events=False)


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
    # `(n.status = ...) IS TRUE`: never a scan of notif_status_idx (see write_results).
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


def put_back(ids: list, claimed_at: datetime, detail: str, now: datetime) -> list[tuple]:
    """Move claimed rows (``ids``: uuid hex) back to ``queued`` with an event; only rows still held by the
    claim of ``claimed_at``. Returns their (id, priority, channel, category)."""
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
        cursor.execute(sql, [Status.QUEUED, now, now, plain_array(ids), Status.SENDING, claimed_at, Status.QUEUED,
                             now, detail])
        return cursor.fetchall()


def mark_due(ids: list) -> None:
    """Make ``queued`` rows due now (their publish failed): the dispatcher publishes them."""
    Notification.objects.filter(id__in=ids, status=Status.QUEUED).update(next_attempt_at=timezone.now())


def delete_pending(keys: list) -> None:
    """Delete ``PendingPublish`` entries (their groups' publish is confirmed): one statement."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(PENDING_TABLE)} "
                       f"WHERE id = ANY(%s::uuid[])", [[str(key) for key in keys]])
