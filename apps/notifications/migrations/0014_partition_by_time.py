"""Notifications and their events become tables partitioned by time (apps/notifications/partitions.py).

Each table is converted in place, in this migration's transaction (docs/operations.md "Upgrading to
partitioned tables"):

1. The table, its primary key and its indexes are renamed ``*_legacy``; the identity of the events' id
   becomes a plain sequence (a partitioned table in PostgreSQL 15 cannot have an identity column).
2. A partitioned table of the same name and columns is created, with the same checks, foreign keys and
   indexes; the events' primary key becomes (id, notification_id) (a partitioned table's unique keys
   must hold its partition key).
3. The old table is attached as the partition of every id below the end of the current partition
   interval (a scan of the old table checks the bound; its indexes are taken over as they are, except
   the events' new primary key, which is built). A default partition and the partitions of the next
   intervals are created.

Nothing is copied: the old rows stay where they are, and retention drops the ``_legacy`` partitions
like any other once their range is past the retention and their rows are finished.
"""
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import migrations

NOTIFICATIONS = "notifications_notification"
EVENTS = "notifications_notificationevent"


def _legacy(name: str) -> str:
    return f"{name[:56]}_legacy"


def _convert(cursor, table: str, key: str, upper: str, primary_key: str) -> None:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table])
    if cursor.fetchone()[0] == "p":
        return
    cursor.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE confrelid = %s::regclass"
                   " AND contype = 'f'", [table])
    referencing = cursor.fetchall()
    if referencing:
        raise RuntimeError(f"foreign keys reference {table}: {referencing}; drop their constraint first")
    cursor.execute("SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisprimary FROM pg_index i"
                   " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass", [table])
    indexes = cursor.fetchall()
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
                   " AND contype = 'f'", [table])
    foreign_keys = cursor.fetchall()
    cursor.execute("SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attidentity <> ''",
                   [table])
    identities = [row[0] for row in cursor.fetchall()]
    sequences = {}
    for column in identities:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {sequence}")
        sequences[column] = (sequence, cursor.fetchone()[0])
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP IDENTITY')

    legacy = _legacy(table)
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{legacy}"')
    for name, _, _ in indexes:
        cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{_legacy(name)}"')
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{legacy}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   f' INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ("{key}")')
    for column, (sequence, start) in sequences.items():
        cursor.execute(f"CREATE SEQUENCE {sequence} START WITH {int(start)}")
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT nextval(%s::regclass)',
                       [sequence])
        cursor.execute(f'ALTER SEQUENCE {sequence} OWNED BY "{table}"."{column}"')
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY ({primary_key})')
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for name, definition, primary in indexes:
        if primary and not definition.endswith(f"({primary_key})"):
            # A different key: the attach builds the partition's index of the new one.
            cursor.execute(f'ALTER TABLE "{legacy}" DROP CONSTRAINT "{_legacy(name)}"')
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{legacy}" FOR VALUES FROM (MINVALUE) TO (%s)',
                   [upper])
    for name, definition, primary in indexes:
        if primary:
            continue
        # The same CREATE INDEX on the parent takes over the old table's index (no build).
        cursor.execute(definition)
    cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')


def partition(apps, schema_editor):
    from apps.notifications import partitions

    interval = settings.NOTIFIER_PARTITION_INTERVAL
    now = datetime.now(timezone.utc)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {NOTIFICATIONS} ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        newest = row[0] if row else None
        end = partitions.interval_start(now, interval)
        if newest is not None and partitions.time_of(newest) >= end:
            end = partitions.interval_start(partitions.time_of(newest), interval)
        upper = str(partitions.bound(end + timedelta(seconds=interval)))
        _convert(cursor, NOTIFICATIONS, "id", upper, "id")
        _convert(cursor, EVENTS, "notification_id", upper, "id, notification_id")
    partitions.ensure_ahead(now)


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0013_notification_broadcast'),
        ('inbox', '0002_notification_without_fk_check'),
    ]

    operations = [
        migrations.RunPython(partition, elidable=False),
    ]
