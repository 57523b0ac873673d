"""Time partitions and retention (apps/notifications/partitions.py, issue 25), on databases of their own.

Each test gets a fresh database copied from one migrated for this module (retention drops partitions,
which must not happen to the shared test database), and the Django connection of the test process is
pointed at it for the test. The upgrade test migrates a database to the last migration before
partitioning, writes rows there, and runs the rest of the migrations as an upgrade would.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from apps.notifications import partitions
from apps.notifications.models import Notification, NotificationEvent, Status
from notifier import ids
from tests.stack import ROOT

pytestmark = pytest.mark.integration

BASE = settings.DATABASES["default"]["NAME"].removeprefix("test_")
TEMPLATE = f"{BASE}_lifecycle_tmpl"
WORK = f"{BASE}_lifecycle"
DAY = timedelta(days=1)


def _admin():
    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)


def _recreate(name: str, template: str | None = None) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def _drop(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(name: str, *target: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "SECRET_KEY": "lifecycle",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}", "PYTHONPATH": str(ROOT),
           "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", *target, "--noinput", "-v", "0"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def template_db():
    _recreate(TEMPLATE)
    _migrate(TEMPLATE)
    yield TEMPLATE
    _drop(TEMPLATE)


def _use(name: str):
    conn = connections["default"]
    conn.close()
    saved = conn.settings_dict["NAME"]
    conn.settings_dict["NAME"] = name
    return saved


@pytest.fixture
def lifecycle_db(template_db, django_db_blocker):
    """A fresh partitioned database; the test process's default connection uses it during the test."""
    _recreate(WORK, template=template_db)
    with django_db_blocker.unblock():
        saved = _use(WORK)
        try:
            yield WORK
        finally:
            _use(saved)
    _drop(WORK)


def _insert(status: str, *, at: datetime | None = None, inbox: bool = False) -> uuid.UUID:
    """A notification (id of ``at``'s millisecond, or now) with an event, as the pipeline writes them."""
    from apps.inbox.models import InboxState
    from apps.recipients.models import Recipient

    value = ids.uuid7() if at is None else uuid.UUID(
        int=partitions.bound(at).int | (0x7 << 76) | (0b10 << 62) | int.from_bytes(os.urandom(7), "big"))
    now = datetime.now(timezone.utc)
    recipient = Recipient.objects.create(external_id=f"r-{value.hex[:12]}") if inbox else None
    n = Notification.objects.create(id=value, channel="inapp" if inbox else "email", to="" if inbox else "a@x.test",
                                    recipient=recipient, status=status, created_at=now, updated_at=now)
    NotificationEvent.objects.create(notification=n, status=status, at=now)
    if inbox:
        InboxState.objects.create(notification=n, recipient=recipient)
    return value


def _where(value: uuid.UUID) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {partitions.NOTIFICATIONS} WHERE id = %s", [value])
        return cursor.fetchone()[0]


def test_a_new_database_has_partitions_ahead_and_a_default_partition(lifecycle_db):
    with connection.cursor() as cursor:
        parts = partitions.partitions(cursor, partitions.NOTIFICATIONS)
        events = partitions.partitions(cursor, partitions.EVENTS)
    assert [(p.lo, p.hi) for p in parts] == [(p.lo, p.hi) for p in events]
    assert parts[-1].default and parts[0].lo is None
    now = datetime.now(timezone.utc)
    top = max(p.hi_time for p in parts if not p.default)
    assert top >= now + timedelta(seconds=settings.NOTIFIER_PARTITION_INTERVAL * settings.NOTIFIER_PARTITIONS_AHEAD)
    value = _insert(Status.QUEUED)
    assert not _where(value).endswith("_default")
    assert Notification.objects.get(id=value).events.count() == 1


def test_the_beat_job_creates_partitions_ahead_as_time_passes(lifecycle_db):
    later = datetime.now(timezone.utc) + 10 * DAY
    created = partitions.maintain(now=later)["created"]
    assert created, "no partition created ten days on"
    value = _insert(Status.QUEUED, at=later + DAY)
    assert _where(value) == partitions.partition_name(partitions.NOTIFICATIONS,
                                                      partitions.interval_start(later + DAY, 86400))
    assert partitions.maintain(now=later)["created"] == []  # nothing twice


def test_retention_drops_whole_partitions_of_finished_notifications_with_their_events_and_inbox(lifecycle_db):
    from apps.inbox.models import InboxState

    old = [_insert(Status.SENT, inbox=True), _insert(Status.FAILED), _insert(Status.CANCELLED)]
    fresh_day = datetime.now(timezone.utc) + 2 * DAY
    fresh = _insert(Status.SENT, at=fresh_day, inbox=True)
    with connection.cursor() as cursor:
        legacy_end = partitions.partitions(cursor, partitions.NOTIFICATIONS)[0].hi_time
    # The legacy range ended exactly the retention ago; the fresh row's range ends later.
    report = partitions.maintain(now=legacy_end + timedelta(seconds=settings.NOTIFIER_RETENTION_SECONDS))
    assert partitions.NOTIFICATIONS + "_legacy" in report["dropped"]
    assert report["kept"] == {}
    assert not Notification.objects.filter(id__in=old).exists()
    assert not NotificationEvent.objects.filter(notification_id__in=old).exists()
    assert not InboxState.objects.filter(notification_id__in=old).exists()
    # The younger partition and its rows are untouched.
    assert Notification.objects.filter(id=fresh).exists()
    assert InboxState.objects.filter(notification_id=fresh).exists()
    assert NotificationEvent.objects.filter(notification_id=fresh).count() == 1
    with connection.cursor() as cursor:
        names = {p.name for p in partitions.partitions(cursor, partitions.EVENTS)}
    assert partitions.EVENTS + "_legacy" not in names


def test_a_partition_with_unfinished_notifications_is_kept_and_reported(lifecycle_db, capsys):
    queued, scheduled = _insert(Status.QUEUED), _insert(Status.SCHEDULED)
    _insert(Status.SENT)
    later = datetime.now(timezone.utc) + timedelta(days=settings.NOTIFIER_RETENTION_DAYS + 3)
    report = partitions.maintain(now=later)
    legacy = partitions.NOTIFICATIONS + "_legacy"
    assert legacy not in report["dropped"]
    assert report["kept"][legacy] == {"queued": 1, "scheduled": 1}
    assert Notification.objects.filter(id__in=[queued, scheduled]).count() == 2
    call_command("partitions")
    listing = capsys.readouterr().out
    assert legacy in listing
    # Once they are finished, the next run drops it.
    Notification.objects.filter(id__in=[queued, scheduled]).update(status=Status.SENT)
    assert legacy in partitions.maintain(now=later)["dropped"]


def test_ids_beyond_every_partition_land_in_the_default_partition_and_move_when_theirs_is_created(lifecycle_db):
    far = datetime.now(timezone.utc) + 20 * DAY
    value = _insert(Status.QUEUED, at=far)
    assert _where(value) == partitions.NOTIFICATIONS + "_default"
    assert partitions.stray_rows() == 1
    partitions.maintain(now=far)
    assert not _where(value).endswith("_default")
    assert partitions.stray_rows() == 0
    assert NotificationEvent.objects.filter(notification_id=value).count() == 1
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.EVENTS}_default")
        assert cursor.fetchone()[0] == 0


def test_an_existing_database_is_upgraded_in_place_and_its_old_rows_expire_like_any_other(django_db_blocker):
    name = f"{BASE}_upgrade"
    _recreate(name)
    try:
        _migrate(name, "notifications", "0013")
        _migrate(name, "inbox", "0001")
        old = ids.uuid7()
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO notifications_notification (id, channel, \"to\", category, priority, template, locale,"
                " content, status, attempts, attempts_at_replay, last_error, provider, provider_message_id,"
                " metadata, group_key, created_at, updated_at, project_id) VALUES (%s, 'email', 'a@x.test',"
                " 'transactional', 'normal', '', '', '{}', 'sent', 1, 0, '', 'null', '', '{}', '', now(), now(), 1)",
                [old])
            for status in ("queued", "sending", "sent"):
                conn.execute("INSERT INTO notifications_notificationevent (notification_id, status, at, detail,"
                             " provider) VALUES (%s, %s, now(), '', '')", [old, status])
        _migrate(name)
        with django_db_blocker.unblock():
            saved = _use(name)
            try:
                assert partitions.is_partitioned()
                assert _where(old) == partitions.NOTIFICATIONS + "_legacy"
                events = list(NotificationEvent.objects.filter(notification_id=old).order_by("id"))
                assert [e.status for e in events] == ["queued", "sending", "sent"]
                # The events' ids go on from where the old table's left off.
                new = _insert(Status.QUEUED, at=datetime.now(timezone.utc) + 2 * DAY)
                assert NotificationEvent.objects.get(notification_id=new).id > events[-1].id
                later = datetime.now(timezone.utc) + timedelta(days=settings.NOTIFIER_RETENTION_DAYS + 1.5)
                assert partitions.NOTIFICATIONS + "_legacy" in partitions.maintain(now=later)["dropped"]
                assert not Notification.objects.filter(id=old).exists()
                assert Notification.objects.filter(id=new).exists()
            finally:
                _use(saved)
    finally:
        _drop(name)
