"""Time partitions of notifications and their events, and retention (docs/operations.md "Retention").

Both tables are partitioned by RANGE on the notification id (events: on ``notification_id``). Ids are
version-7 UUIDs whose first 48 bits are the creation millisecond (``notifier/ids.py``), so an id range is a
creation-time range: the partitions of one range hold the notifications created in it and their events,
and they are created and dropped together. The primary key stays ``id`` and every lookup by id reads
one partition.

- ``<table>_legacy``: from MINVALUE to the boundary the conversion chose (migration 0014): the rows of a
  database from before partitioning, and a new database's first hours.
- ``<table>_pYYYYMMDDtHHMMSS``: one per ``NOTIFIER_PARTITION_INTERVAL`` seconds (aligned to multiples of
  it since the epoch), created ``NOTIFIER_PARTITIONS_AHEAD`` intervals ahead by the beat job
  ``notifier.partitions``.
- ``<table>_default``: catches ids outside every range (a clock far ahead, beat stopped for longer than
  the partitions ahead), so an insert never fails; when the range's partition is created its rows move
  there.

Retention (``NOTIFIER_RETENTION_SECONDS``) drops a range's partitions whole once its upper bound is older
than the retention and none of its notifications is scheduled, queued or sending; a partition that still
holds such rows is kept and reported (logged, and listed by ``manage.py partitions``). Rows of other
tables that point at the dropped notifications (inbox entries, digest members, fallback steps) are
deleted first, or their reference cleared, as their ``on_delete`` says.
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as tz

from django.conf import settings
from django.db import OperationalError, connection, models, transaction

from notifier import ids

from .models import Notification, NotificationEvent, Status

logger = logging.getLogger(__name__)

NOTIFICATIONS = Notification._meta.db_table
EVENTS = NotificationEvent._meta.db_table
# (table, partition key); the notifications' partition of a range is created first and dropped last.
TABLES = ((NOTIFICATIONS, "id"), (EVENTS, "notification_id"))
# A partition holding notifications in these statuses is never dropped: they still have work to do.
UNFINISHED = (Status.SCHEDULED, Status.QUEUED, Status.SENDING)
# One beat job at a time changes partitions (a transaction-level advisory lock; any constant will do).
_LOCK = 0x6E6F7469

_BOUND = re.compile(r"FOR VALUES FROM \((MINVALUE|'[0-9a-f-]+')\) TO \((MAXVALUE|'[0-9a-f-]+')\)")


@dataclass(frozen=True)
class Partition:
    name: str
    lo: uuid.UUID | None  # None: MINVALUE
    hi: uuid.UUID | None  # None: MAXVALUE
    default: bool = False

    @property
    def lo_time(self) -> datetime | None:
        return None if self.lo is None else time_of(self.lo)

    @property
    def hi_time(self) -> datetime | None:
        return None if self.hi is None else time_of(self.hi)


def bound(at: datetime) -> uuid.UUID:
    """The lowest version-7 UUID of ``at``'s millisecond: a partition boundary."""
    return ids.uuid7_before(at.timestamp())


def time_of(value: uuid.UUID) -> datetime:
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=tz.utc)


def interval_start(at: datetime, interval: float) -> datetime:
    """The start of the partition interval holding ``at`` (multiples of ``interval`` since the epoch)."""
    return datetime.fromtimestamp(int(at.timestamp() // interval * interval), tz=tz.utc)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m%dt%H%M%S}"


def partitions(cursor, table: str) -> list[Partition]:
    """``table``'s partitions, ordered by range (the default partition last)."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass", [table])
    found = []
    for name, expr in cursor.fetchall():
        if expr == "DEFAULT":
            found.append(Partition(name, None, None, default=True))
            continue
        match = _BOUND.fullmatch(expr)
        if match is None:
            raise RuntimeError(f"partition {name} of {table} has an unexpected bound: {expr}")
        lo, hi = (None if v.endswith("VALUE") else uuid.UUID(v.strip("'")) for v in match.groups())
        found.append(Partition(name, lo, hi))
    return sorted(found, key=lambda p: (p.default, p.lo is not None, p.lo or uuid.UUID(int=0)))


def is_partitioned() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [NOTIFICATIONS])
        return cursor.fetchone()[0]


def maintain(now: datetime | None = None) -> dict:
    """The beat job: partitions created ahead, expired ones dropped. Returns what it did and what it kept."""
    now = now or datetime.now(tz.utc)
    created = ensure_ahead(now)
    dropped, kept = drop_expired(now)
    stray = stray_rows()
    if stray:
        logger.warning("partitions: %d notifications outside every range (default partition)", stray)
    return {"created": created, "dropped": dropped, "kept": kept, "stray": stray}


def ensure_ahead(now: datetime) -> list[str]:
    """Create the partitions of every interval up to NOTIFIER_PARTITIONS_AHEAD intervals after ``now``'s.
    Returns their names."""
    interval, ahead = settings.NOTIFIER_PARTITION_INTERVAL, settings.NOTIFIER_PARTITIONS_AHEAD
    horizon = interval_start(now, interval) + timedelta(seconds=interval * (ahead + 1))
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        tops = [p.hi for p in partitions(cursor, NOTIFICATIONS) if not p.default]
        if None in tops:
            return []  # a range up to MAXVALUE: nothing to add
        top = time_of(max(tops)) if tops else interval_start(now, interval)
        while top < horizon:
            end = interval_start(top, interval) + timedelta(seconds=interval)
            for table, key in TABLES:
                _create(cursor, table, key, top, end)
            created.append(partition_name(NOTIFICATIONS, top))
            top = end
    if created:
        logger.info("partitions: created %s", ", ".join(created))
    return created


def _create(cursor, table: str, key: str, start: datetime, end: datetime) -> None:
    """The partition of [start, end); rows the default partition caught for that range move into it."""
    name, lo, hi = partition_name(table, start), str(bound(start)), str(bound(end))
    default = f"{table}_default"
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [default])
    has_default = cursor.fetchone()[0]
    strays = False
    if has_default:
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{default}" WHERE {key} >= %s AND {key} < %s)', [lo, hi])
        strays = cursor.fetchone()[0]
    if not strays:
        cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)', [lo, hi])
        return
    # The default partition's rows of the range cannot stay there once the range has its partition: take
    # the default partition out, create the range's, move the rows through the parent, put it back.
    cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{default}"')
    cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)', [lo, hi])
    cursor.execute(f'WITH moved AS (DELETE FROM "{default}" WHERE {key} >= %s AND {key} < %s RETURNING *)'
                   f' INSERT INTO "{table}" SELECT * FROM moved', [lo, hi])
    moved = cursor.rowcount
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{default}" DEFAULT')
    logger.warning("partitions: moved %d rows of %s from %s into %s", moved, table, default, name)


def drop_expired(now: datetime, *, retention: float | None = None) -> tuple[list[str], dict[str, dict]]:
    """Drop the partitions whose range ended more than ``retention`` seconds before ``now`` and hold no
    unfinished notification. Returns the dropped names and, for each expired partition kept, its
    unfinished rows per status (or why it could not be dropped now)."""
    retention = settings.NOTIFIER_RETENTION_SECONDS if retention is None else retention
    if retention <= 0:
        return [], {}
    cutoff = now - timedelta(seconds=retention)
    dropped, kept = [], {}
    with connection.cursor() as cursor:
        expired = [p for p in partitions(cursor, NOTIFICATIONS)
                   if not p.default and p.hi is not None and p.hi_time <= cutoff]
    for part in expired:
        outcome = _drop(part)
        if outcome:
            kept[part.name] = outcome
        else:
            dropped.append(part.name)
    if dropped:
        logger.info("partitions: dropped %s (retention %.0f s)", ", ".join(dropped), retention)
    for name, why in kept.items():
        logger.warning("partitions: %s is past retention but kept: %s", name,
                       ", ".join(f"{count} {status}" for status, count in sorted(why.items())))
    return dropped, kept


def _drop(part: Partition) -> dict:
    """Drop one range's partitions unless a notification in it is unfinished. Returns {} once dropped,
    else the unfinished rows per status (or {"busy": 1} when the tables stayed locked by others)."""
    with connection.cursor() as cursor:
        unfinished = _unfinished(cursor, part)
    if unfinished:
        return unfinished
    with transaction.atomic(), connection.cursor() as cursor:
        _forget_references(cursor, part)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Dropping a partition locks its parent. The parents first (always in this order, so no
            # deadlock with writers, who lock a parent before its partition), for at most 2 s: a long
            # wait would hold up every insert queued behind the lock. Then the check again: a replay may
            # have made a row queued since.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(f'LOCK TABLE "{NOTIFICATIONS}", "{EVENTS}" IN ACCESS EXCLUSIVE MODE')
            unfinished = _unfinished(cursor, part)
            if unfinished:
                return unfinished
            for table, _ in reversed(TABLES):
                name = _same_range(cursor, table, part)
                if name:
                    cursor.execute(f'DROP TABLE "{name}"')
    except OperationalError as exc:  # lock_timeout: the next run tries again
        logger.warning("partitions: %s not dropped this time: %s", part.name, exc)
        return {"busy": 1}
    return {}


def _unfinished(cursor, part: Partition) -> dict:
    cursor.execute(f'SELECT status, count(*) FROM "{part.name}" WHERE status = ANY(%s) GROUP BY status',
                   [list(UNFINISHED)])
    return dict(cursor.fetchall())


def _same_range(cursor, table: str, part: Partition) -> str | None:
    for other in partitions(cursor, table):
        if not other.default and (other.lo, other.hi) == (part.lo, part.hi):
            return other.name
    return None


def _forget_references(cursor, part: Partition) -> None:
    """Rows of other tables that point at the range's notifications: deleted where deleting the notification
    deletes them (``on_delete=CASCADE``), their reference cleared otherwise. Each has an index on it."""
    for rel in Notification._meta.related_objects:
        model = rel.related_model
        if model is NotificationEvent or not rel.field.concrete:
            continue
        column = rel.field.column
        where = f"{column} < %s" if part.lo is None else f"{column} >= %s AND {column} < %s"
        params = [str(part.hi)] if part.lo is None else [str(part.lo), str(part.hi)]
        if rel.on_delete is models.CASCADE:
            cursor.execute(f'DELETE FROM "{model._meta.db_table}" WHERE {where}', params)
        elif rel.field.null:
            cursor.execute(f'UPDATE "{model._meta.db_table}" SET {column} = NULL WHERE {where}', params)


def stray_rows() -> int:
    """Notifications in the default partition (none while beat keeps partitions ahead)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{NOTIFICATIONS}_default"])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(f'SELECT count(*) FROM "{NOTIFICATIONS}_default"')
        return cursor.fetchone()[0]


def describe() -> list[dict]:
    """Every notifications partition: its range, estimated rows and size (events' partition included)."""
    rows = []
    with connection.cursor() as cursor:
        events = {(p.lo, p.hi, p.default): p.name for p in partitions(cursor, EVENTS)}
        for part in partitions(cursor, NOTIFICATIONS):
            names = [part.name] + ([events[(part.lo, part.hi, part.default)]]
                                   if (part.lo, part.hi, part.default) in events else [])
            cursor.execute("SELECT (sum(greatest(c.reltuples, 0)) FILTER (WHERE c.relname = %s))::bigint,"
                           " sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c WHERE c.relname = ANY(%s)",
                           [part.name, names])
            estimate, size = cursor.fetchone()
            rows.append({"name": part.name, "from": part.lo_time, "to": part.hi_time, "default": part.default,
                         "rows_estimate": estimate or 0, "bytes": size or 0})
    return rows
